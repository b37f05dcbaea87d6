"""The Anthropic surface: ``/v1/messages/count_tokens``, and the client headers ``/v1/messages``
passes to an Anthropic vendor (the operation itself is registered in ``api/operations.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.asgi import parse_object
from lowart.api.responses import JSON, body_of, caller
from lowart.api.routing import route
from lowart.catalog.directory import Directory
from lowart.dispatch.flow import Dispatcher
from lowart.errors import InvalidRequest, ModelNotFound
from lowart.formats.openai import prompt_text
from lowart.usage.estimate import Tokenizer

PASSED_HEADERS = (b"anthropic-version", b"anthropic-beta")


class TokenCounter:
    """``POST /v1/messages/count_tokens``: an offline estimate, whatever the vendor.

    It counts against the caller's RPM window, reads at most ``max_body_bytes``, and tokenizes
    in a worker thread, one count at a time per process, so that counts cannot crowd out the
    event loop or the shared thread pool (docs/api.md, "Anthropic Messages")."""

    def __init__(
        self,
        directory: Directory,
        tokenizer: Tokenizer,
        dispatcher: Dispatcher,
        max_body_bytes: int,
    ) -> None:
        self._directory = directory
        self._tokenizer = tokenizer
        self._dispatcher = dispatcher
        self._max_body = max_body_bytes
        self._one_at_a_time = asyncio.Semaphore(1)

    async def count(self, request: Request) -> JSON:
        principal = caller(request)
        rpm = await self._dispatcher.count_request(principal)
        body: dict[str, Any] = parse_object(await body_of(request, self._max_body))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("'model' is required and must be a string.", param="model")
        if not isinstance(body.get("messages"), list):
            raise InvalidRequest("'messages' is required and must be an array.", param="messages")
        if self._directory.model(model) is None or not principal.may_use(model):
            raise ModelNotFound(model)
        async with self._one_at_a_time:
            tokens = await asyncio.to_thread(self._count, body)
        return JSON({"input_tokens": tokens}, raw_headers=rpm.headers() if rpm else ())

    def _count(self, body: dict[str, Any]) -> int:
        return self._tokenizer.count(prompt_text(body))

    def routes(self) -> list[Route]:
        return [route("/v1/messages/count_tokens", POST=self.count)]
