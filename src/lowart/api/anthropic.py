"""The Anthropic surface: ``/v1/messages`` and ``/v1/messages/count_tokens``."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.asgi import parse_object
from lowart.api.chat import messages_fields
from lowart.api.relay import ChatEndpoint
from lowart.api.responses import JSON, body_of, caller
from lowart.api.routing import route
from lowart.api.stream import WriteTimeout
from lowart.catalog.directory import Directory
from lowart.dispatch.flow import Dispatcher
from lowart.errors import InvalidRequest, ModelNotFound
from lowart.formats.openai import prompt_text
from lowart.jobs.service import JobService
from lowart.providers.base import ANTHROPIC
from lowart.tools.loop import ToolLoop
from lowart.usage.estimate import Tokenizer

PASSED_HEADERS = (b"anthropic-version", b"anthropic-beta")


def messages_endpoint(
    dispatcher: Dispatcher, jobs: JobService, tools: ToolLoop, write_timeout: WriteTimeout
) -> ChatEndpoint:
    """``POST /v1/messages``: the Messages API for any vendor behind the model."""
    return ChatEndpoint(
        dispatcher,
        jobs=jobs,
        tools=tools,
        fmt=ANTHROPIC,
        validate=messages_fields,
        write_timeout=write_timeout,
        headers=PASSED_HEADERS,
    )


class TokenCounter:
    """``POST /v1/messages/count_tokens``: an offline estimate, whatever the vendor."""

    def __init__(self, directory: Directory, tokenizer: Tokenizer) -> None:
        self._directory = directory
        self._tokenizer = tokenizer

    async def count(self, request: Request) -> JSON:
        body: dict[str, Any] = parse_object(await body_of(request))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("'model' is required and must be a string.", param="model")
        if not isinstance(body.get("messages"), list):
            raise InvalidRequest("'messages' is required and must be an array.", param="messages")
        if self._directory.model(model) is None or not caller(request).may_use(model):
            raise ModelNotFound(model)
        text = prompt_text(body)
        return JSON({"input_tokens": await asyncio.to_thread(self._tokenizer.count, text)})

    def routes(self) -> list[Route]:
        return [route("/v1/messages/count_tokens", POST=self.count)]
