"""The wire formats a request arrives in (``ChatRequest.fmt``): one definition for every layer."""

from __future__ import annotations

OPENAI = "openai"  # OpenAI Chat Completions
ANTHROPIC = "anthropic"  # Anthropic Messages
IMAGES = "images"  # an OpenAI Images request (models whose vendor serves images only)
EMBEDDINGS = "embeddings"  # an OpenAI Embeddings request (models whose vendor serves them)
