"""The wire formats a request arrives in (``ChatRequest.fmt``): one definition for every layer."""

from __future__ import annotations

OPENAI = "openai"  # OpenAI Chat Completions
ANTHROPIC = "anthropic"  # Anthropic Messages
IMAGES = "images"  # an OpenAI Images request (models whose vendor serves images only)
EMBEDDINGS = "embeddings"  # an OpenAI Embeddings request (models whose vendor serves them)
RESPONSES = "responses"  # an OpenAI Responses request (translated to chat unless a model speaks it)


def response_id(request_id: str) -> str:
    """The Responses API id of the response a request (``req_…``) or job (``job_…``) gives:
    the gateway owns response ids, whatever vendor answered (docs/api.md, "Responses")."""
    return "resp_" + request_id.partition("_")[2]
