"""How the gateway handles each field of a Responses API request (``POST /v1/responses``): the
single source of the field table in docs/api.md, "Responses".

Each entry is ``(field, handling, note)``, handling being one of:

- ``translated``: the gateway acts on it (sent upstream in the vendor's terms, or run itself);
- ``ignored``: dropped, because dropping it cannot change the answer;
- ``refused``: a 400 naming it, because dropping it would change the answer.

A field that is not listed is ignored too (as OpenAI's newer fields reach old gateways).
"""

from __future__ import annotations

from typing import Final

TRANSLATED = "translated"
IGNORED = "ignored"
REFUSED = "refused"

# Hosted tools: OpenAI runs them on its side, which no other vendor (nor the gateway) does.
HOSTED_TOOLS: Final = (
    "file_search",
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "computer",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
    "namespace",
    "tool_search",
    "programmatic_tool_calling",
)
# The keys of an ``mcp`` tool that make a vendor or the gateway call a server the caller names.
MCP_REMOTE_KEYS: Final = ("server_url", "connector_id", "headers", "authorization", "tunnel_id")

_NAMES_SERVER = "the gateway runs only the MCP servers an admin registered"

FIELDS: Final[tuple[tuple[str, str, str], ...]] = (
    ("model", TRANSLATED, "the gateway's model name, routed like chat's"),
    ("input", TRANSLATED, "a string or items; see the input items below"),
    ("instructions", TRANSLATED, "a leading system message"),
    ("max_output_tokens", TRANSLATED, "chat's `max_completion_tokens` (1 to 10,000,000)"),
    ("temperature", TRANSLATED, "passed as is (0 to 2)"),
    ("top_p", TRANSLATED, "passed as is (0 to 1)"),
    ("parallel_tool_calls", TRANSLATED, "passed as is"),
    ("tools[].type: function", TRANSLATED, "a chat function tool; `strict` only when given"),
    ("tools[].type: mcp", TRANSLATED, "an MCP server registered in the gateway, by label"),
    ("tool_choice", TRANSLATED, '"auto", "none", "required" or `{"type": "function", "name"}`'),
    ("text.format", TRANSLATED, "`text`, `json_object` or `json_schema`: chat's `response_format`"),
    ("text.verbosity", TRANSLATED, "chat's `verbosity`"),
    ("reasoning.effort", TRANSLATED, "chat's `reasoning_effort`; Anthropic's extended `thinking`"),
    ("prompt_cache_key", TRANSLATED, "chat's `prompt_cache_key`"),
    ("stream", TRANSLATED, "the Responses events, with usage"),
    ("previous_response_id", TRANSLATED, "the gateway sends the stored conversation instead"),
    ("background", TRANSLATED, "run as a job; refused with `store: false`"),
    ("store", IGNORED, "not sent upstream; the gateway keeps the response unless false"),
    ("metadata", IGNORED, "echoed in the response, not sent (16 string pairs at most)"),
    ("user", IGNORED, "echoed; the gateway bills its own user"),
    ("safety_identifier", IGNORED, "echoed, not sent"),
    ("service_tier", IGNORED, "not sent"),
    ("prompt_cache_retention", IGNORED, "not sent"),
    ("prompt_cache_options", IGNORED, "not sent"),
    ("include", IGNORED, "what it asks for (encrypted reasoning, logprobs…) is not produced"),
    ("top_logprobs", IGNORED, "logprobs are not returned"),
    ("stream_options", IGNORED, "`include_obfuscation`: deltas are not padded"),
    ("reasoning.summary", IGNORED, "reasoning is returned as the vendor gives it"),
    ("background_options", IGNORED, "a job runs as soon as it can"),
    ("access_programs", IGNORED, "not sent"),
    ("image", IGNORED, "not sent"),
    ("truncation: disabled", IGNORED, "the gateway never truncates"),
    ("truncation: auto", REFUSED, "the gateway cannot truncate a conversation"),
    ("prompt", REFUSED, "stored prompt templates are OpenAI's"),
    ("conversation", REFUSED, "OpenAI's conversations; use `previous_response_id`"),
    ("context_management", REFUSED, "compaction is OpenAI's"),
    ("moderation", REFUSED, "moderation is OpenAI's"),
    ("max_tool_calls", REFUSED, "only with `mcp` tools, whose calls it would limit"),
    *((f"tools[].type: {kind}", REFUSED, "a hosted tool") for kind in HOSTED_TOOLS),
    *((f"tools[].{key} (mcp)", REFUSED, _NAMES_SERVER) for key in MCP_REMOTE_KEYS),
    ("tool_choice: other types", REFUSED, "hosted tools, `mcp`, `custom`, `allowed_tools`"),
    ("input[]: message", TRANSLATED, "roles user, system, developer (as system), assistant"),
    ("input[].content[]: input_text, output_text, refusal", TRANSLATED, "text"),
    ("input[].content[]: input_image", TRANSLATED, "an `image_url` part; `file_id` refused"),
    ("input[].content[]: input_file, input_audio", REFUSED, "files are not translated"),
    ("input[]: function_call", TRANSLATED, "an assistant message's tool call"),
    ("input[]: function_call_output", TRANSLATED, "a tool message (text output only)"),
    ("input[]: reasoning", IGNORED, "dropped: chat vendors take no reasoning back"),
    ("input[]: mcp_list_tools, mcp_call, mcp_approval_request", TRANSLATED, "kept by the gateway"),
    ("input[]: mcp_approval_response", TRANSLATED, "answers the gateway's approval request"),
    ("input[]: other types", REFUSED, "hosted tools' items and `item_reference`"),
)
