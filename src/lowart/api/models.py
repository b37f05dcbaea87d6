"""The model list: ``GET /v1/models`` and ``/v1/models/{id}``, in OpenAI's or Anthropic's shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.responses import JSON, caller
from lowart.api.routing import route
from lowart.catalog.directory import Directory
from lowart.errors import ModelNotFound
from lowart.model_entry import ModelEntry
from lowart.principal import Principal


def _openai_model(model: ModelEntry) -> dict[str, Any]:
    return {
        "id": model.model_id,
        "object": "model",
        "created": model.created,
        "owned_by": model.vendor,
    }


def _anthropic_model(model: ModelEntry) -> dict[str, Any]:
    created = model.created
    return {
        "type": "model",
        "id": model.model_id,
        "display_name": model.model_id,
        "created_at": _rfc3339(created),
    }


def _rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


class Models:
    """``GET /v1/models`` and ``GET /v1/models/{id}``, in OpenAI's or Anthropic's shape."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def _visible(self, principal: Principal) -> list[ModelEntry]:
        return sorted(self._directory.visible_models(principal), key=lambda m: m.model_id)

    async def list_models(self, request: Request) -> JSON:
        models = self._visible(caller(request))
        if "anthropic-version" in request.headers:
            data = [_anthropic_model(m) for m in models]
            return JSON(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        return JSON({"object": "list", "data": [_openai_model(m) for m in models]})

    async def get_model(self, request: Request) -> JSON:
        model_id = request.path_params["model_id"]
        model = self._directory.model(model_id)
        if model is None or not caller(request).may_use(model_id):
            raise ModelNotFound(model_id)
        shape = _anthropic_model if "anthropic-version" in request.headers else _openai_model
        return JSON(shape(model))

    def routes(self) -> list[Route]:
        return [
            route("/v1/models", GET=self.list_models),
            route("/v1/models/{model_id}", GET=self.get_model),
        ]
