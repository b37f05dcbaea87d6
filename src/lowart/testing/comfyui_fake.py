"""A fake ComfyUI server on aiohttp: queue, history, ``/view`` files, WebSocket.

Routes answer with and without ``/api``; an ``Origin`` whose host differs from ``Host`` gets 403
(as on a loopback ComfyUI). A worker task owned by the app runs prompts one at a time in queue
order; ``comfyui_state`` describes validation, the node classes and what a run emits. Events go to
the socket registered under the prompt's ``client_id``; ``progress`` of a prompt without one,
``execution_interrupted`` and ``status`` go to every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web

from lowart.testing import comfyui_state as state
from lowart.testing.comfyui_state import JsonObject, NodeSpec, QueuedPrompt, Run

START_TIMEOUT = 10.0
_T = TypeVar("_T")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Aborted(Exception):
    """The running prompt was interrupted or forgotten."""


class _NodeFailed(Exception):
    """An ``ErrorNode`` raised."""


@web.middleware
async def _origin_guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Real ComfyUI refuses a cross-origin request to a loopback host."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        return web.Response(status=403)
    return await handler(request)


async def _json_fields(request: web.Request) -> JsonObject:
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise web.HTTPBadRequest(text="invalid JSON body") from exc
    return body if isinstance(body, dict) else {}  # a non-object body has no prompt


class FakeComfyUI:
    """A ComfyUI server whose queue, history, files and sockets live on the instance.

    Start it once (``start()`` or ``in_thread()``). ``submitted``: every ``POST /prompt`` with a
    ``prompt``; ``files``: ``(type, subfolder, filename)`` -> bytes. ``step_delay`` is mutable.
    """

    def __init__(
        self,
        *,
        step_delay: float = 0.01,
        default_steps: int = 4,
        send_success: bool = True,
        send_executing_none: bool = True,
    ) -> None:
        self.step_delay = step_delay
        self.default_steps = default_steps
        self.send_success = send_success
        self.send_executing_none = send_executing_none
        self.queue: list[QueuedPrompt] = []
        self.running: QueuedPrompt | None = None
        self.history: dict[str, JsonObject] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.submitted: list[JsonObject] = []
        self.host, self.port = "127.0.0.1", 0
        self._counter = 0
        self._file_counters: dict[tuple[str, str, str], int] = {}
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._live: set[web.WebSocketResponse] = set()
        self._wakeup = asyncio.Event()
        self._abort: str | None = None
        self._abort_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    @property
    def base_url(self) -> str:
        """``http://host:port`` once started, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (0 picks a free port, then read ``port``)."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.host, self.port = host, int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every socket, then stop the worker and the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @classmethod
    def in_thread(
        cls, host: str = "127.0.0.1", port: int = 0, fake: FakeComfyUI | None = None
    ) -> ThreadedComfyUI:
        """Serve ``fake`` (or a new one) from a daemon thread with its own event loop."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_loop, args=(loop,), name="fake-comfyui", daemon=True)
        thread.start()
        served = ThreadedComfyUI(fake or cls(), thread, loop)
        try:
            served.call(served.fake.start(host, port))
        except OSError:
            served.stop()
            raise
        return served

    def forget(self) -> None:
        """Lose the queue, history and running prompt, as a restarted ComfyUI (files stay)."""
        self.queue.clear()
        self.history.clear()
        if self.running is not None:
            self._stop_running("forget")
            self.running = None

    async def drop_ws(self) -> None:
        """Close every WebSocket from the server side (clients must reconnect or poll)."""
        sockets = list(self._live)
        self._sockets.clear()
        self._live.clear()
        for ws in sockets:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake drop")

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[_origin_guard])
        routes: list[tuple[str, str, _Handler]] = [
            ("POST", "/prompt", self._post_prompt),
            ("GET", "/prompt", self._get_prompt),
            ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue),
            ("POST", "/interrupt", self._post_interrupt),
            ("GET", "/history", self._get_history),
            ("GET", "/history/{prompt_id}", self._get_history_entry),
            ("GET", "/view", self._get_view),
            ("GET", "/object_info", self._get_object_info),
            ("GET", "/object_info/{class_type}", self._get_object_info),
            ("GET", "/ws", self._websocket),
        ]
        for prefix, (method, path, handler) in itertools.product(("", "/api"), routes):
            app.router.add_route(method, prefix + path, handler)
        app.cleanup_ctx.append(self._worker_context)
        app.on_shutdown.append(lambda _: self.drop_ws())
        return app

    async def _post_prompt(self, request: web.Request) -> web.Response:
        fields = await _json_fields(request)
        try:
            prompt, node_errors = state.check_submission(fields, self._counter)
        except state.PromptRejected as exc:
            if "prompt" in fields:
                self.submitted.append(self._submission(fields, None, 400))
            return web.json_response(exc.body, status=400)
        self._counter += 1
        self.submitted.append(self._submission(fields, prompt.prompt_id, 200))
        self.queue.append(prompt)
        self.queue.sort(key=lambda queued: queued.number)
        self._wakeup.set()
        await self._broadcast_status()
        answer = {"prompt_id": prompt.prompt_id, "number": prompt.number}
        return web.json_response(answer | {"node_errors": node_errors})

    @staticmethod
    def _submission(fields: JsonObject, prompt_id: str | None, status: int) -> JsonObject:
        graph, client_id = fields.get("prompt"), fields.get("client_id")
        return {"prompt_id": prompt_id, "client_id": client_id, "prompt": graph, "status": status}

    def _exec_info(self) -> JsonObject:
        return {"queue_remaining": len(self.queue) + (self.running is not None)}

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": self._exec_info()})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self.running.item()] if self.running is not None else []
        pending = [prompt.item() for prompt in self.queue]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        fields = await _json_fields(request)
        doomed = fields.get("delete")
        if fields.get("clear") is True:
            self.queue.clear()
        if isinstance(doomed, list):
            self.queue[:] = [prompt for prompt in self.queue if prompt.prompt_id not in doomed]
        await self._broadcast_status()
        return web.Response()

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        target = (await _json_fields(request)).get("prompt_id")
        if self.running is not None and target in (None, self.running.prompt_id):
            self._stop_running("interrupt")
        return web.Response()

    async def _get_history(self, request: web.Request) -> web.Response:
        limit, offset = request.query.get("max_items"), int(request.query.get("offset", -1))
        page = state.history_page(self.history, int(limit) if limit else None, offset)
        return web.json_response(page)  # a bad number above is a 500, as in ComfyUI

    async def _get_history_entry(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _get_view(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename", "")
        subfolder = request.query.get("subfolder", "")
        kind = request.query.get("type", "output")
        if state.bad_view_request(kind, filename, subfolder):
            return web.Response(status=400)
        data = self.files.get((kind, subfolder.strip("/"), filename))
        if data is None:
            return web.Response(status=404)
        headers = {"Content-Disposition": f'filename="{filename}"'}
        return web.Response(body=data, content_type="image/png", headers=headers)

    async def _get_object_info(self, request: web.Request) -> web.Response:
        wanted = request.match_info.get("class_type")
        names = [name for name in state.INPUTS if wanted in (None, name)]
        return web.json_response({name: state.object_info(name) for name in names})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets[sid] = ws  # replaces an earlier socket under this id, as ComfyUI does
        self._live.add(ws)
        try:
            await self._send(ws, "status", {"status": {"exec_info": self._exec_info()}, "sid": sid})
            async for _ in ws:
                pass  # clients only talk to negotiate feature flags, which the fake ignores
        finally:
            self._live.discard(ws)
            if self._sockets.get(sid) is ws:
                del self._sockets[sid]
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: JsonObject) -> None:
        if not ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await ws.send_json({"type": event, "data": data})

    async def _broadcast(self, event: str, data: JsonObject) -> None:
        for ws in list(self._sockets.values()):
            await self._send(ws, event, data)

    async def _broadcast_status(self) -> None:
        await self._broadcast("status", {"status": {"exec_info": self._exec_info()}})

    async def _emit(self, run: Run, event: str, **data: object) -> None:
        """Send a prompt's event to its client (``progress`` to all when it has none)."""
        data["prompt_id"] = run.prompt.prompt_id
        if run.prompt.client_id is None:
            if event == "progress":
                await self._broadcast(event, data)
        elif (ws := self._sockets.get(run.prompt.client_id)) is not None:
            await self._send(ws, event, data)

    async def _record(self, run: Run, event: str, **data: object) -> None:
        """Send an event and keep it in the messages of the history entry."""
        data |= {"prompt_id": run.prompt.prompt_id, "timestamp": state.now_ms()}
        run.messages.append([event, data])
        if event == "execution_interrupted":
            await self._broadcast(event, data)
        elif event != "execution_success" or self.send_success:
            await self._emit(run, event, **data)

    async def _worker_context(self, app: web.Application) -> AsyncIterator[None]:
        worker = asyncio.create_task(self._work(), name="fake-comfyui-worker")
        yield
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    async def _work(self) -> None:
        while True:
            await self._wakeup.wait()
            if not self.queue:
                self._wakeup.clear()
                continue
            self.running = self.queue.pop(0)
            self._abort = None
            self._abort_event.clear()
            await self._execute(Run(self.running))

    def _stop_running(self, reason: str) -> None:
        self._abort = reason
        self._abort_event.set()

    async def _pause(self, delay: float) -> None:  # raises _Aborted once the run is stopped
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._abort_event.wait(), delay)
        if self._abort is not None:
            raise _Aborted

    async def _execute(self, run: Run) -> None:
        await self._record(run, "execution_start")
        await self._record(run, "execution_cached", nodes=[])
        try:
            for node_id in run.prompt.plan:
                await self._run_node(run, run.prompt.nodes[node_id])
        except _Aborted:
            if self._abort == "forget":
                return
            await self._record(run, "execution_interrupted", **state.failure(run))
        except _NodeFailed:
            await self._record(run, "execution_error", **state.node_error(run))
        else:
            await self._record(run, "execution_success")
        self.history[run.prompt.prompt_id] = state.history_entry(run)
        self.running = None
        if self.send_executing_none:
            await self._emit(run, "executing", node=None, display_node=None)
        await self._broadcast_status()

    async def _run_node(self, run: Run, spec: NodeSpec) -> None:
        await self._pause(0)
        run.current, node_id = spec, spec.node_id
        await self._emit(run, "executing", node=node_id, display_node=node_id)
        if spec.class_type == "ErrorNode":
            raise _NodeFailed(node_id)
        await self._pause(state.seconds(spec))
        total = state.steps(spec, self.default_steps)
        for value in range(1, total + 1):
            await self._pause(self.step_delay)
            await self._emit(run, "progress", value=value, max=total, node=node_id)
        if spec.class_type in state.IMAGE_OUTPUTS:
            images = state.save_images(run.prompt.nodes, spec, self.files, self._file_counters)
            run.outputs[node_id] = output = {"images": images}
            await self._emit(run, "executed", node=node_id, display_node=node_id, output=output)
        run.executed.append(node_id)


@dataclass
class ThreadedComfyUI:
    """A ``FakeComfyUI`` served from a daemon thread running its own event loop."""

    fake: FakeComfyUI
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        return self.fake.base_url

    def call(self, work: Coroutine[object, object, _T], timeout: float = START_TIMEOUT) -> _T:
        """Run ``work`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def forget(self) -> None:  # FakeComfyUI.forget, on the server's loop
        self.loop.call_soon_threadsafe(self.fake.forget)
        self.call(asyncio.sleep(0))  # returns once the callback above has run

    def drop_ws(self) -> None:  # FakeComfyUI.drop_ws, on the server's loop
        self.call(self.fake.drop_ws())

    def stop(self) -> None:
        """Stop the server, then its loop, and wait for the thread to end."""
        if self.loop.is_running():
            self.call(self.fake.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START_TIMEOUT)

    def __enter__(self) -> ThreadedComfyUI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
