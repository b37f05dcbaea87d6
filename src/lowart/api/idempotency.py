"""``Idempotency-Key`` on the POSTs that create work (docs/api.md "Idempotency-Key").

Only a request that carries the header pays for it (a claim and a settle in the database);
every other request passes through with one header scan. The first request with a key runs and
its whole answer is kept; a retry with the same key and body gets that answer back, marked
``idempotent-replayed: true``, with no second upstream call and no second bill.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable

from lowart.api.asgi import ASGIApp, Message, Receive, Scope, Send, header, read_body
from lowart.api.errors import render
from lowart.api.middleware import ROUTE_KEY, principal_of
from lowart.errors import (
    IdempotencyInProgress,
    IdempotencyMismatch,
    IdempotencyStreamed,
    InvalidRequest,
    LowartError,
)
from lowart.storage.idempotency import STREAMED, Answer, Claim, Headers, Held, IdempotencyStore

IDEMPOTENT_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/images/generations",
        "/v1/responses",
        "/v1/tools/confirm",
    }
)
KEY_HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotent-replayed"
MAX_KEY_LENGTH = 255
TRANSIENT = frozenset({408, 409, 425, 429})  # nothing done: the key is released for a retry
_KEPT_PREFIX = b"x-lowart-"
_SSE = b"text/event-stream"


def valid_key(raw: bytes) -> str:
    """1 to 255 printable ASCII characters; anything else is a 400."""
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not raw.isascii() or not raw.decode().isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            param="Idempotency-Key",
        )
    return raw.decode()


def final(status: int) -> bool:
    """A 2xx or a client error is the request's answer; a 5xx or a 429 did nothing to keep."""
    return 200 <= status < 300 or (400 <= status < 500 and status not in TRANSIENT)


def _kept(name: bytes) -> bool:
    return name == b"content-type" or name.startswith(_KEPT_PREFIX)


class _Recorder:
    """Passes the response on, settling the claim just before its last message goes out, so a
    retry sent the moment the answer arrives finds it kept (a stream: as its head goes out)."""

    __slots__ = ("_claim", "_send", "_store", "body", "headers", "settled", "status", "streamed")

    def __init__(self, send: Send, store: IdempotencyStore, claim: Claim) -> None:
        self._send = send
        self._store = store
        self._claim = claim
        self.status = 0
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.streamed = False
        self.settled = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [(k, v) for k, v in message.get("headers", ()) if _kept(k)]
            self.streamed = any(v.startswith(_SSE) for k, v in self.headers if k == b"content-type")
            if self.streamed:
                await self.settle(Answer(STREAMED, [], b""))
        elif message["type"] == "http.response.body" and not self.streamed:
            self.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                whole = Answer(self.status, self.headers, b"".join(self.body))
                await self.settle(whole if final(self.status) else None)
        await self._send(message)

    async def settle(self, answer: Answer | None) -> None:
        """Keep ``answer`` for replays, or (None) free the key; once."""
        if self.settled:
            return
        self.settled = True
        if answer is None:
            await self._store.release(self._claim)
        else:
            await self._store.finish(self._claim, answer)


def _raised(path: str, error: BaseException | None) -> Answer | None:
    """What to keep of a request that ended before its answer went out: a final error only."""
    if isinstance(error, LowartError) and final(error.http_status):
        status, headers, body = render(error, path)
        return Answer(status, [(k, v) for k, v in headers if _kept(k)], body)
    return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body read once here, handed to the route; then the client's own messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class IdempotencyKeys:
    """Pure ASGI: claims ``Idempotency-Key`` on the idempotent POSTs, replays kept answers."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore) -> None:
        self.app = app
        self._store = store

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the app's awaitable: a request without the header
        # costs one header scan on these four routes, and nothing anywhere else.
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in IDEMPOTENT_PATHS
        ):
            raw = header(scope, KEY_HEADER)
            if raw is not None:
                return self._keyed(scope, receive, send, raw)
        return self.app(scope, receive, send)

    async def _keyed(self, scope: Scope, receive: Receive, send: Send, raw: bytes) -> None:
        path = scope["path"]
        scope[ROUTE_KEY] = path  # the metric's label, as the router would have set it
        key = valid_key(raw)
        body = await read_body(scope, receive)
        digest = hashlib.sha256(body).hexdigest()
        claim = await self._store.claim(principal_of(scope).user_id, key, path, digest)
        if isinstance(claim, Held):
            await _replay(send, claim, path, digest)
            return
        await self._run(claim, scope, _replaying(body, receive), send)

    async def _run(self, claim: Claim, scope: Scope, receive: Receive, send: Send) -> None:
        recorder = _Recorder(send, self._store, claim)
        keeper = asyncio.create_task(self._store.keep(claim))
        error: BaseException | None = None
        try:
            await self.app(scope, receive, recorder)
        except BaseException as exc:
            error = exc
            raise
        finally:
            keeper.cancel()
            # Not settled yet: it raised (a final error is kept) or broke off mid-answer (freed).
            await recorder.settle(None if recorder.status else _raised(scope["path"], error))


async def _replay(send: Send, held: Held, path: str, digest: str) -> None:
    """The kept answer, or why there is none to give."""
    if held.route != path or held.body_sha256 != digest:
        raise IdempotencyMismatch(
            "This Idempotency-Key was used with a different request body or route; "
            "use a new key for a new request."
        )
    if held.answer is None:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still running; retry after it finishes."
        )
    if held.answer.status == STREAMED:
        raise IdempotencyStreamed(
            "This Idempotency-Key was used by a streamed request, which is never replayed; "
            "use a new key."
        )
    answer = held.answer
    head = [
        *answer.headers,
        (b"content-length", str(len(answer.body)).encode()),
        (REPLAYED_HEADER, b"true"),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": head})
    await send({"type": "http.response.body", "body": answer.body})
