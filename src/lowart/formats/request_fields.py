"""The request fields each vendor API documents: the allowlist of what a client's body may carry
upstream (docs/reliability.md, S9).

A field not listed is dropped on the way up, silently, as LiteLLM drops what a provider does not
take: so a client can never hand the gateway control-plane input (``api_base``, ``base_url``,
``api_key``, ``extra_headers``, ``fallbacks``, ``mock_response``…), and no field the gateway owns
(``async``) leaks upstream. Nested values pass as they are: vendors read them as data.
"""

from __future__ import annotations

from typing import Final

# OpenAI Chat Completions (platform.openai.com/docs/api-reference/chat/create), plus the three
# sampling fields every common OpenAI-compatible server (vLLM, llama.cpp, Ollama) accepts.
OPENAI_CHAT_FIELDS: Final = frozenset(
    {
        "messages",
        "model",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
        # OpenAI-compatible servers' sampling extensions
        "top_k",
        "min_p",
        "repetition_penalty",
    }
)

# Anthropic Messages (docs.anthropic.com/en/api/messages). ``mcp_servers`` (Anthropic's MCP
# connector, which makes the vendor call URLs the client names) is left out on purpose: the
# gateway runs the MCP servers an admin registered instead.
ANTHROPIC_MESSAGES_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "container",
        "context_management",
        "metadata",
        "output_config",
        "output_format",
        "service_tier",
        "stop_sequences",
        "stream",
        "system",
        "temperature",
        "thinking",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
    }
)
