"""The ComfyUI client: submit a workflow, follow it to its end, locate, fetch and cancel prompts.

Follows ComfyUI's client flow: the WebSocket is opened *before* the prompt is submitted (so no event
is missed), events are filtered by ``prompt_id``, and ``/history`` is the source of truth for the
outcome. When the socket is quiet, dropped or unavailable, the client polls ``/history`` and
``/queue`` instead. It knows nothing of jobs or storage: the caller keeps the ``prompt_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Literal
from urllib.parse import quote

import aiohttp
import msgspec
import structlog
from aiohttp import WSMsgType
from yarl import URL

from lowart.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from lowart.formats.comfyui import (
    OutputRef,
    WsEvent,
    content_type_of,
    history_entry,
    history_failure,
    outputs_from_history,
    parse_submit,
    queue_position,
    validate_ref,
    ws_event,
)
from lowart.model_entry import ModelEntry
from lowart.providers.http import DEFAULT_MAX_BODY, UpstreamErrors, read_capped
from lowart.providers.transport_failure import host_of, status_of

log = structlog.get_logger()

ProgressCallback = Callable[[float], Awaitable[None]]
SubmittedCallback = Callable[[str], Awaitable[None]]
Location = Literal["done", "queued", "running", "lost"]
CancelOutcome = Literal["dequeued", "interrupted", "absent"]

_WS_MAX_MSG = 32 * 2**20  # preview frames can be large; beyond this the socket drops and we poll
_SETTLE_S = 0.05  # ComfyUI writes history just after its success event: re-check soon
_RUNNING_CAP = 0.99  # 1.0 is reported only once the outputs are known
_WS_DROPPED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class ComfyUIClient:
    """Talks to the ComfyUI servers behind models, over the process's shared session.

    ``client_id`` names this gateway worker; each watch derives its own socket id from it, since
    ComfyUI lets only one socket hold a given ``clientId``. Bodies read whole stop at ``max_body``.
    """

    def __init__(
        self, session: aiohttp.ClientSession, client_id: str, max_body: int = DEFAULT_MAX_BODY
    ) -> None:
        self._session = session
        self._client_id = client_id
        self._max_body = max_body

    async def run(
        self,
        model: ModelEntry,
        graph: Mapping[str, object],
        on_progress: ProgressCallback,
        *,
        on_submitted: SubmittedCallback | None = None,
        poll_s: float = 1.0,
    ) -> tuple[str, list[OutputRef]]:
        """Connect, submit, report the ``prompt_id`` and wait: the whole client flow."""
        async with self.watch(model) as watch:
            prompt_id = await watch.submit(graph)
            if on_submitted is not None:
                await on_submitted(prompt_id)
            return prompt_id, await watch.wait(prompt_id, on_progress, poll_s)

    @asynccontextmanager
    async def watch(self, model: ModelEntry) -> AsyncIterator[Watch]:
        """A WebSocket opened before submitting, so none of the prompt's events are missed.

        The model's total timeout runs from here to the end of ``Watch.wait``.
        """
        client_id = f"{self._client_id}-{uuid.uuid4().hex[:12]}"
        deadline = asyncio.get_running_loop().time() + model.timeouts.total
        socket = await self._connect_ws(model, client_id)
        watch = Watch(self, model, client_id, socket, deadline)
        try:
            yield watch
        finally:
            await watch.close()

    async def submit(
        self, model: ModelEntry, graph: Mapping[str, object], *, client_id: str | None = None
    ) -> str:
        """``POST /prompt``; the ``prompt_id``, or InvalidRequest with ComfyUI's node errors."""
        body = {"prompt": graph, "client_id": client_id or self._client_id}
        status, answer = await self._call(model, "POST", "/prompt", body)
        try:
            return parse_submit(status, answer)
        except InvalidRequest:
            queued = answer.get("prompt_id") if isinstance(answer, Mapping) else None
            if status == 200 and isinstance(queued, str):
                # Partly accepted: don't leave it running, and keep ComfyUI's message if that fails.
                with contextlib.suppress(UpstreamError, UpstreamTimeout):
                    await self.cancel(model, queued)
            raise

    async def wait(
        self,
        model: ModelEntry,
        prompt_id: str,
        on_progress: ProgressCallback,
        poll_s: float = 1.0,
    ) -> list[OutputRef]:
        """Follow an already submitted prompt (after a restart, say) to its outputs."""
        async with self.watch(model) as watch:
            return await watch.wait(prompt_id, on_progress, poll_s)

    async def locate(self, model: ModelEntry, prompt_id: str) -> Location:
        """Where the prompt is: finished (in history), running, queued, or lost by ComfyUI."""
        location, _ = await self._locate(model, prompt_id)
        return location

    async def fetch(
        self, model: ModelEntry, ref: OutputRef, max_bytes: int | None = None
    ) -> tuple[bytes, str]:
        """One output file from the model's own ``/view``, with its media type (at most
        ``max_bytes``, the client's cap by default)."""
        validate_ref(ref)
        query = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        async with self._open(model, "GET", "/view", model.timeouts.total, query=query) as answer:
            if answer.status != 200:
                raise UpstreamError(f"ComfyUI answered {answer.status} for {ref.filename!r}.")
            cap = self._max_body if max_bytes is None else max_bytes
            data = await read_capped(answer, cap, model.model_id)
            header = answer.headers.get("Content-Type")
        return data, content_type_of(header, data)

    async def cancel(self, model: ModelEntry, prompt_id: str) -> CancelOutcome:
        """Drop the prompt if it is pending, interrupt it if it is running (checked on /queue)."""
        position = await self._queue_position(model, prompt_id)
        if position == "queued":
            await self._post_ok(model, "/queue", {"delete": [prompt_id]})
            position = await self._queue_position(model, prompt_id)  # it may have just started
            if position != "running":
                return "dequeued"
        if position == "running":
            await self._post_ok(model, "/interrupt", {"prompt_id": prompt_id})
            return "interrupted"
        return "absent"

    # --- internals shared with Watch -----------------------------------------------------------

    async def _locate(
        self, model: ModelEntry, prompt_id: str
    ) -> tuple[Location, Mapping[str, object] | None]:
        # history, queue, history: ComfyUI moves a prompt from the queue to history under one
        # lock, so a prompt missing from both reads is really gone.
        for attempt in range(2):
            entry = await self._history(model, prompt_id)
            if entry is not None:
                return "done", entry
            if attempt == 0 and (position := await self._queue_position(model, prompt_id)):
                return position, None
        return "lost", None

    async def _history(self, model: ModelEntry, prompt_id: str) -> Mapping[str, object] | None:
        status, body = await self._call(model, "GET", f"/history/{quote(prompt_id, safe='')}")
        _expect_ok(status, "GET /history")
        return history_entry(body, prompt_id)

    async def _queue_position(
        self, model: ModelEntry, prompt_id: str
    ) -> Literal["running", "queued"] | None:
        status, body = await self._call(model, "GET", "/queue")
        _expect_ok(status, "GET /queue")
        return queue_position(body, prompt_id)

    async def _post_ok(self, model: ModelEntry, path: str, body: object) -> None:
        status, _ = await self._call(model, "POST", path, body)
        _expect_ok(status, f"POST {path}")

    async def _call(
        self, model: ModelEntry, method: str, path: str, body: object = None
    ) -> tuple[int, object]:
        """One JSON request within the first-byte timeout; the status and the decoded body."""
        limit = min(model.timeouts.first_byte, model.timeouts.total)
        async with self._open(model, method, path, limit, body=body) as response:
            raw = await read_capped(response, self._max_body, model.model_id)
            return response.status, _decode(raw)

    @asynccontextmanager
    async def _open(
        self,
        model: ModelEntry,
        method: str,
        path: str,
        limit_s: float,
        *,
        body: object = None,
        query: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request to the model's own server: no redirects, transport errors mapped."""
        data = None if body is None else msgspec.json.encode(body)
        headers = _headers(model) | ({} if data is None else {"Content-Type": "application/json"})
        with UpstreamErrors(model.model_id, _url(model, path)):
            async with (
                asyncio.timeout(limit_s),
                self._session.request(
                    method,
                    _url(model, path),
                    params=query,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(sock_connect=model.timeouts.connect),
                    allow_redirects=False,
                ) as response,
            ):
                yield response

    async def _connect_ws(
        self, model: ModelEntry, client_id: str
    ) -> aiohttp.ClientWebSocketResponse | None:
        url = URL(_url(model, "/ws")).with_query(clientId=client_id)
        url = url.with_scheme("wss" if url.scheme == "https" else "ws")
        try:
            async with asyncio.timeout(model.timeouts.connect):
                return await self._session.ws_connect(
                    url,
                    headers=_headers(model),
                    heartbeat=None,
                    max_msg_size=_WS_MAX_MSG,
                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # Never the exception's repr: a refused handshake carries the request's headers.
            log.warning(
                "comfyui_ws_unavailable",
                model_id=model.model_id,
                host=host_of(str(url)),
                error=type(exc).__name__,
                status=status_of(exc),
            )
            return None


class Watch:
    """One open WebSocket (or none, then polling) for prompts submitted through it."""

    def __init__(
        self,
        client: ComfyUIClient,
        model: ModelEntry,
        client_id: str,
        socket: aiohttp.ClientWebSocketResponse | None,
        deadline: float,
    ) -> None:
        self._client = client
        self._model = model
        self.client_id = client_id
        self._socket = socket
        self._deadline = deadline  # loop time

    async def submit(self, graph: Mapping[str, object]) -> str:
        """Submit under this watch's ``client_id``, so the prompt's events come to its socket."""
        return await self._client.submit(self._model, graph, client_id=self.client_id)

    async def wait(
        self, prompt_id: str, on_progress: ProgressCallback, poll_s: float = 1.0
    ) -> list[OutputRef]:
        """The prompt's outputs once it ends, reporting rising progress that ends at 1.0.

        Raises UpstreamError with ComfyUI's message when the run fails, is interrupted or is
        lost, and UpstreamTimeout when the model's total timeout passes.
        """
        progress = _Progress(on_progress)
        try:
            async with asyncio.timeout_at(self._deadline):
                entry = await self._follow(prompt_id, progress, poll_s)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"ComfyUI did not finish prompt {prompt_id} for '{self._model.model_id}' in time."
            ) from exc
        if failure := history_failure(entry):
            raise UpstreamError(failure)
        refs = outputs_from_history(entry)
        await progress.finish()
        return refs

    async def close(self) -> None:
        if self._socket is not None:
            socket, self._socket = self._socket, None
            await socket.close()

    async def _follow(
        self, prompt_id: str, progress: _Progress, poll_s: float
    ) -> Mapping[str, object]:
        ended = False
        while True:
            location, entry = await self._client._locate(self._model, prompt_id)
            if entry is not None:
                return entry
            if location == "lost":
                raise UpstreamError(
                    f"ComfyUI lost prompt {prompt_id}: it is neither in its history nor its queue."
                )
            if ended:
                await asyncio.sleep(min(_SETTLE_S, poll_s))
            else:
                ended = await self._listen(prompt_id, progress, poll_s)

    async def _listen(self, prompt_id: str, progress: _Progress, poll_s: float) -> bool:
        """Relay events until the prompt ends (True) or it has had none for ``poll_s``."""
        if self._socket is None:
            await asyncio.sleep(poll_s)
            return False
        loop = asyncio.get_running_loop()
        quiet_at = loop.time() + poll_s  # broadcasts about other prompts don't count as news
        while self._socket is not None and (left := quiet_at - loop.time()) > 0:
            event = await self._receive(self._socket, prompt_id, left)
            if event is None:
                continue
            if event.kind == "failed":
                raise UpstreamError(event.message)
            if event.kind == "done":
                return True
            await progress.report(event.fraction)
            quiet_at = loop.time() + poll_s
        return False

    async def _receive(
        self, socket: aiohttp.ClientWebSocketResponse, prompt_id: str, wait_s: float
    ) -> WsEvent | None:
        """The next frame's meaning for the prompt; a dropped socket is closed (polling follows)."""
        try:
            message = await socket.receive(timeout=wait_s)
        except TimeoutError:
            return None
        except (aiohttp.ClientError, OSError):
            message = None
        if message is None or message.type in _WS_DROPPED:
            log.info("comfyui_ws_dropped", model_id=self._model.model_id, prompt_id=prompt_id)
            await self.close()
            return None
        if message.type is not WSMsgType.TEXT:
            return None  # binary previews
        return ws_event(message.data, prompt_id)


class _Progress:
    """Forwards only rising fractions; 1.0 is kept for the end."""

    def __init__(self, report: ProgressCallback) -> None:
        self._report = report
        self._last = 0.0

    async def report(self, fraction: float) -> None:
        fraction = min(fraction, _RUNNING_CAP)
        if fraction > self._last:
            self._last = fraction
            await self._report(fraction)

    async def finish(self) -> None:
        if self._last < 1.0:
            self._last = 1.0
            await self._report(1.0)


def _url(model: ModelEntry, path: str) -> str:
    return model.base_url.rstrip("/") + path


def _headers(model: ModelEntry) -> dict[str, str]:
    # No Origin header: ComfyUI answers 403 when it differs from Host on a loopback address.
    headers = {"Accept": "application/json"}
    if model.api_key:  # ComfyUI has no auth itself; a reverse proxy in front of it may
        headers["Authorization"] = f"Bearer {model.api_key}"
    return headers


def _expect_ok(status: int, what: str) -> None:
    if status != 200:
        raise UpstreamError(f"ComfyUI answered {what} with status {status}.")


def _decode(raw: bytes) -> object:
    try:
        decoded: object = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return decoded
