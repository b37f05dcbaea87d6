"""``POST /v1/images/generations``: OpenAI's Images API on ComfyUI models, sync or as a job."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.asgi import parse_object
from lowart.api.middleware import REQUEST_ID_KEY
from lowart.api.responses import JSON, body_of, caller
from lowart.api.routing import route
from lowart.dispatch.flow import Dispatcher
from lowart.entries import Operation
from lowart.errors import InvalidRequest
from lowart.formats.comfyui import image_values
from lowart.formats.ids import IMAGES
from lowart.jobs.service import IMAGES as IMAGE_JOB
from lowart.jobs.service import JobService
from lowart.providers.base import ChatRequest

RESPONSE_FORMATS = ("url", "b64_json")


def _validate(body: dict[str, Any]) -> tuple[str, bool]:
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
    return model, is_async


class ImageRoutes:
    """Generates images through the dispatcher, so limits, fallbacks and billing apply."""

    def __init__(self, dispatcher: Dispatcher, jobs: JobService) -> None:
        self._dispatcher = dispatcher
        self._jobs = jobs

    async def generate(self, request: Request) -> JSON:
        raw = await body_of(request)
        body = parse_object(raw)
        model, is_async = _validate(body)
        principal = caller(request)
        admission = await self._dispatcher.admit(
            principal, model, body, len(raw), operation=Operation.IMAGES
        )
        stored = {k: v for k, v in body.items() if k != "async"}
        if is_async:
            await self._dispatcher.release(admission)
            job = await self._jobs.submit(
                principal, IMAGE_JOB, model, {"body": stored, "fmt": IMAGES}
            )
            return JSON(
                {"status": "async_started", "job_id": job.job_id, "model": model}, status_code=202
            )
        chat = ChatRequest(
            body=stored,
            stream=False,
            wants_usage=False,
            request_id=request.scope[REQUEST_ID_KEY],
            fmt=IMAGES,
            user_id=principal.user_id,
        )
        served = await self._dispatcher.complete(admission, chat)
        return JSON(served.body, raw=True, raw_headers=served.headers)

    def routes(self) -> list[Route]:
        return [route("/v1/images/generations", POST=self.generate)]
