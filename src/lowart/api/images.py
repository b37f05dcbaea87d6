"""The parser of ``POST /v1/images/generations``: OpenAI's Images API on ComfyUI models, sync or
as a job (registered in ``api/operations.py``)."""

from __future__ import annotations

from typing import Any

from lowart.errors import InvalidRequest
from lowart.formats.comfyui import image_values
from lowart.pipeline.operation import OperationFields

RESPONSE_FORMATS = ("url", "b64_json")


def image_fields(body: dict[str, Any]) -> OperationFields:
    """The images operation's parser: 400 for anything ComfyUI could not render; ``async`` is
    read and taken out (the vendor never sees it)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    if body.get("response_format", "url") not in RESPONSE_FORMATS:
        raise InvalidRequest(
            "'response_format' must be 'url' or 'b64_json'.", param="response_format"
        )
    is_async = body.get("async", False)
    if not isinstance(is_async, bool):
        raise InvalidRequest("'async' must be a boolean.", param="async")
    image_values(body, {}, lambda: 0)  # prompt, n, size and seed: 400 now rather than later
    body.pop("async", None)
    return OperationFields(model=model, stream=False, wants_usage=False, is_async=is_async)
