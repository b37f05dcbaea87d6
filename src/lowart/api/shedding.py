"""Overload shedding: beyond ``MAX_IN_FLIGHT`` requests at once, new work is refused at once.

A refusal costs no parsing, no limiter and no upstream call, so the requests already admitted
keep their latency while the excess learns within microseconds to come back later (503 with
``Retry-After: 1``). Streams count until they end.
"""

from __future__ import annotations

from lowart.api.asgi import ASGIApp, Receive, Scope, Send
from lowart.errors import Shed
from lowart.telemetry.metrics import Metrics

WORK_PREFIX = "/v1/"  # POSTs there start model work; reads and the admin surface are not shed


class InFlightLimit:
    """Counts the POSTs under ``/v1/`` in flight; refuses the ones beyond ``limit``."""

    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics) -> None:
        self.app = app
        self._limit = limit
        self._in_flight = 0
        self._shed = metrics.rate_limited.labels(reason="overload")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith(WORK_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        if self._in_flight >= self._limit:
            self._shed.inc()
            raise Shed("The gateway is at capacity; try again in a second.")
        self._in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._in_flight -= 1
