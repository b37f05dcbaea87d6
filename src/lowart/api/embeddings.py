"""The parser of ``POST /v1/embeddings``: OpenAI's Embeddings API, whole answers only
(registered in ``api/operations.py``; docs/api.md, "Embeddings")."""

from __future__ import annotations

from typing import Any

from lowart.errors import InvalidRequest
from lowart.formats.embeddings import check_request
from lowart.pipeline.operation import OperationFields


def embedding_fields(body: dict[str, Any]) -> OperationFields:
    """The embeddings operation's parser: 400 for a body the Embeddings API would refuse, and
    for ``stream`` or ``async`` (an embedding is one whole answer, never a job)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    check_request(body)
    return OperationFields(model=model, stream=False, wants_usage=False, is_async=False)
