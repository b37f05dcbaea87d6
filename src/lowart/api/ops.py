"""Operations routes: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lowart.api.middleware import presented_key
from lowart.api.responses import JSON
from lowart.api.routing import route
from lowart.errors import AuthError, ServiceUnavailable
from lowart.security.keys import digests_match, hash_key
from lowart.telemetry.metrics import CONTENT_TYPE, Metrics

log = structlog.get_logger()

Probe = Callable[[], Awaitable[None]]


class Ops:
    """Public routes; ``/metrics`` needs ``METRICS_TOKEN`` when it is set."""

    def __init__(
        self,
        metrics: Metrics,
        probes: dict[str, Probe],
        metrics_token: str | None,
        openapi: dict[str, Any],
    ) -> None:
        self._metrics = metrics
        self._probes = probes
        self._token_hash = hash_key(metrics_token) if metrics_token else None
        self._openapi = openapi

    async def health(self, request: Request) -> JSON:
        return JSON({"status": "ok"})

    async def ready(self, request: Request) -> JSON:
        failed = []
        for name, probe in self._probes.items():
            try:
                await probe()
            except Exception:  # any failure means not ready; the reason goes to the log
                log.warning("readiness_probe_failed", probe=name, exc_info=True)
                failed.append(name)
        if failed:
            raise ServiceUnavailable(f"Not ready: {', '.join(failed)} unavailable.")
        return JSON({"status": "ready", "checks": dict.fromkeys(self._probes, "ok")})

    async def metrics(self, request: Request) -> Response:
        if self._token_hash is not None:
            token = presented_key(request.scope)
            if token is None or not digests_match(self._token_hash, hash_key(token)):
                raise AuthError("A valid metrics token is required.")
        return Response(self._metrics.render(), media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> JSON:
        return JSON(self._openapi)

    def routes(self) -> list[Route]:
        return [
            route("/health", GET=self.health),
            route("/ready", GET=self.ready),
            route("/metrics", GET=self.metrics),
            route("/openapi.json", GET=self.openapi),
        ]
