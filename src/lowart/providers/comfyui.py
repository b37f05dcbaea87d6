"""The ComfyUI vendor: image generation, for ``/v1/images/generations`` and for chat.

A request renders the model's workflow template (``params.workflow``) with the request's values,
runs it on ComfyUI, downloads every output into the gateway's file storage, and answers with
signed URLs (or base64). Run as a job, it reports ComfyUI's step progress and stores the prompt
id first, so a restart resumes watching instead of submitting again. Each image counts
``params.quota_tokens_per_image`` tokens (default 0).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from lowart.errors import UpstreamError, UpstreamLost
from lowart.formats.comfyui import OutputRef, image_values, random_seed, render_workflow
from lowart.formats.ids import IMAGES, OPENAI, RESPONSES, response_id
from lowart.formats.openai import Usage, completion_chunks, last_user_text
from lowart.formats.responses_build import response_object, usage_object
from lowart.formats.responses_events import response_events
from lowart.formats.responses_request import responses_to_chat
from lowart.model_entry import ModelEntry, OperationKind
from lowart.providers.base import ChatRequest, Completion, JobHooks
from lowart.providers.comfyui_client import ComfyUIClient
from lowart.providers.vendor import ProviderParts, RequiredParam, Vendor
from lowart.security.keys import new_id
from lowart.security.signing import UrlSigner
from lowart.storage.files import FileRow
from lowart.storage.filestore import FileStore


async def _no_progress(_value: float) -> None:
    return None


def _per_image(model: ModelEntry) -> int:
    value = model.params.get("quota_tokens_per_image", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class ComfyUIProvider:
    """Generates images on ComfyUI and stores them for their owner."""

    native = OPENAI

    def __init__(
        self,
        client: ComfyUIClient,
        files: FileStore,
        signer: UrlSigner,
        seed: Callable[[], int] = random_seed,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._files = files
        self._signer = signer
        self._seed = seed
        self._clock = clock

    @staticmethod
    def responds(model: ModelEntry) -> bool:
        """Responses requests are served natively: the images as output items."""
        return True

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        if request.fmt == IMAGES:
            return await self._images(model, request)
        if request.fmt == RESPONSES:
            response, usage = await self._respond(model, request)
            return Completion(msgspec.json.encode(response), usage)
        body, images = await self._chat(model, request)
        return Completion(msgspec.json.encode(body), _usage_of(body, images))

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> _WholeStream:
        """A chat stream: the images come whole, so the answer is told once they exist."""
        if request.fmt == RESPONSES:
            response, usage = await self._respond(model, request)
            return _WholeStream(response_events(response), usage)
        body, images = await self._chat(model, request)
        usage = _usage_of(body, images)
        return _WholeStream(completion_chunks(body, request.wants_usage), usage)

    async def _respond(
        self, model: ModelEntry, request: ChatRequest
    ) -> tuple[dict[str, Any], Usage]:
        """A Responses request: each image an ``image_generation_call`` item (base64 PNG)."""
        chat = responses_to_chat(request.body, request.body.get("input") or [])
        prompt = last_user_text(chat)
        if not prompt:
            raise UpstreamError(f"'{model.model_id}' makes images: send a user message to draw.")
        rows = await self._generate(model, request, {"prompt": prompt, "n": 1})
        items = [
            {
                "type": "image_generation_call",
                "id": "ig_" + row.file_id,
                "status": "completed",
                "result": base64.b64encode(await self._files.read(row)).decode(),
            }
            for row in rows
        ]
        tokens = _per_image(model) * len(rows)
        response = response_object(
            request.body,
            response_id=response_id(request.request_id),
            created_at=int(self._clock()),
            output=items,
            status="completed",
            usage=usage_object({"prompt_tokens": 0, "completion_tokens": tokens}),
        )
        return response, Usage(0, tokens, images=len(rows))

    async def _images(self, model: ModelEntry, request: ChatRequest) -> Completion:
        rows = await self._generate(model, request, request.body)
        now = self._clock()
        if request.body.get("response_format") == "b64_json":
            data = [
                {"b64_json": base64.b64encode(await self._files.read(r)).decode()} for r in rows
            ]
        else:
            data = [{"url": self._signer.url(r.file_id, now)} for r in rows]
        body = {"created": int(now), "data": data}
        usage = Usage(0, _per_image(model) * len(rows), images=len(rows))
        return Completion(msgspec.json.encode(body), usage)

    async def _chat(self, model: ModelEntry, request: ChatRequest) -> tuple[dict[str, Any], int]:
        """The chat answer linking the images, and how many there are."""
        prompt = last_user_text(request.body)
        if not prompt:
            raise UpstreamError(f"'{model.model_id}' makes images: send a user message to draw.")
        rows = await self._generate(model, request, {"prompt": prompt, "n": 1})
        now = self._clock()
        links = "\n".join(
            f"![image {i}]({self._signer.url(r.file_id, now)})" for i, r in enumerate(rows, 1)
        )
        tokens = _per_image(model) * len(rows)
        answer = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(now),
            "model": model.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": links},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
        }
        return answer, len(rows)

    async def _generate(
        self, model: ModelEntry, request: ChatRequest, values_from: dict[str, Any]
    ) -> list[FileRow]:
        template = model.params.get("workflow")
        if not isinstance(template, dict) or not template:
            raise UpstreamError(f"'{model.model_id}' has no workflow in params.workflow.")
        defaults = model.params.get("defaults")
        values = image_values(
            values_from, defaults if isinstance(defaults, dict) else {}, self._seed
        )
        refs = await self._run(model, render_workflow(template, values), request.job)
        outputs = [r for r in refs if r.type == "output"] or refs
        return [await self._store(model, request, ref) for ref in outputs]

    async def _run(
        self, model: ModelEntry, graph: dict[str, object], job: JobHooks | None
    ) -> list[OutputRef]:
        progress = job.progress if job is not None else _no_progress
        submitted: list[str] = [job.upstream_ref] if job and job.upstream_ref else []
        try:
            if submitted:
                if await self._client.locate(model, submitted[0]) == "lost":
                    raise UpstreamLost(
                        "ComfyUI has lost the prompt (it is in neither /history "
                        "nor /queue, e.g. after ComfyUI restarted)."
                    )
                return await self._client.wait(model, submitted[0], progress)

            async def remember(prompt_id: str) -> None:
                submitted.append(prompt_id)
                if job is not None:
                    await job.set_upstream_ref(prompt_id)

            _, refs = await self._client.run(model, graph, progress, on_submitted=remember)
            return refs
        except asyncio.CancelledError:
            if job is not None and job.cancelled_by_user and submitted:
                await asyncio.shield(self._client.cancel(model, submitted[0]))
            raise

    async def _store(self, model: ModelEntry, request: ChatRequest, ref: OutputRef) -> FileRow:
        data, content_type = await self._client.fetch(model, ref)
        return await self._files.save(
            file_id=new_id("file"),
            user_id=request.user_id,
            job_id=None,
            data=data,
            content_type=content_type,
            now=self._clock(),
        )


def _usage_of(body: dict[str, Any], images: int) -> Usage:
    tokens = int(body["usage"]["completion_tokens"])
    return Usage(0, tokens, images=images)


class _WholeStream:
    """A stream of an answer that already exists."""

    def __init__(self, chunks: list[bytes], usage: Usage) -> None:
        self._chunks = chunks
        self.usage = usage

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def completion_text(self) -> str:
        return ""

    async def aclose(self) -> None:
        return None


def _build(parts: ProviderParts) -> ComfyUIProvider:
    client_id = "lowart-" + secrets.token_hex(6)
    client = ComfyUIClient(parts.session, client_id, parts.transport.max_body)
    return ComfyUIProvider(client, parts.files, parts.signer)


VENDOR = Vendor(
    name="ComfyUI",
    native=ComfyUIProvider.native,
    build=_build,
    operations=frozenset({OperationKind.CHAT, OperationKind.IMAGES}),
    params=(RequiredParam("workflow", "its graph in ComfyUI's API format"),),
)
