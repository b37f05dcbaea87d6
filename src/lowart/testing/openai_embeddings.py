"""The fake OpenAI upstream's ``POST /v1/embeddings`` (``openai_fake.FakeOpenAI``), chosen by the
model name's options like its chat:

- ``ok`` or anything else: one unit vector per input (the Mock vendor's, derived from the
  input), of ``dimensions`` (default 16) floats, in the ``encoding_format`` asked (float when
  absent); ``prompt_tokens`` counts the words of the text inputs plus the token ids (at least 1).
- ``floats``: ignores ``encoding_format`` and always answers floats (as some compatible
  vendors do).
- ``nousage``: no ``usage``; ``usage-<prompt>-<any>``: report that ``prompt_tokens``;
  ``error-<status>``, ``slow-<ms>``, ``held``: as for chat.
"""

from __future__ import annotations

from typing import Any

from lowart.formats import embeddings

DEFAULT_DIMENSIONS = 16


def embeddings_body(
    body: dict[str, Any], model: str, *, floats: bool, usage: bool, reported: int | None
) -> bytes:
    """The fake's whole answer to an embeddings request."""
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or dimensions < 1:
        dimensions = DEFAULT_DIMENSIONS
    if floats:
        body = {**body, "encoding_format": embeddings.FLOAT}
    counted = len(embeddings.input_texts(body).split()) + embeddings.input_token_ids(body)
    prompt = reported if reported is not None else max(counted, 1)
    return embeddings.mock_answer(body, model, dimensions, prompt if usage else None)
