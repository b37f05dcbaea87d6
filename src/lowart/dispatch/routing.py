"""The routing stage: which deployments of a model one request tries, in which order
(docs/architecture.md, "Routing"; docs/api.md, "Deployments").

A model with one deployment never comes here: the dispatcher tries it as it is. For a model
with several, the router leaves out the cooling ones, asks the model's strategy for an order,
(on a sticky model, the session's own order instead), and puts first the deployment the
request prefers: the one a previous response was served by (``preferred``, the hook for the
Responses API's ``previous_response_id``). A deployment's RPM and TPM caps are checked just
before it is tried.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from lowart.dispatch.health import DeploymentHealth
from lowart.dispatch.strategies import Candidate, order, rotated, sticky, weighted_first
from lowart.limits.base import RateLimiter, TokenWindow
from lowart.model_entry import ModelEntry, Routing, Strategy

SESSION_HEADER = b"x-session-id"
MAX_SESSION_CHARS = 256


def session_of(raw_headers: Sequence[tuple[bytes, bytes]], user_id: str) -> str:
    """What a sticky model hashes: the ``x-session-id`` header, else the caller's user id."""
    for name, value in raw_headers:
        if name == SESSION_HEADER and value:
            return "session:" + value[:MAX_SESSION_CHARS].decode("latin-1")
    return "user:" + user_id


class Router:
    """Orders a model's deployments for one request; checks their caps."""

    def __init__(
        self,
        health: DeploymentHealth,
        rpm: RateLimiter,
        tokens: TokenWindow,
        *,
        explore: float,
        rng: random.Random | None = None,
    ) -> None:
        self.health = health
        self._rpm = rpm
        self._tokens = tokens
        self._explore = explore
        self._rng = rng or random.Random()  # nosec B311: spreading load, not a secret

    def _candidates(self, routing: Routing) -> list[Candidate]:
        health = self.health
        measure = routing.strategy is Strategy.LATENCY
        return [
            Candidate(
                index,
                d.deployment,
                d.weight,
                health.in_flight(d.health_key),
                health.latency(d.health_key) if measure else None,
            )
            for index, d in enumerate(routing.deployments)
            if not health.cooling(d.health_key)
        ]

    def order(
        self, model: ModelEntry, session: str | None, preferred: str | None = None
    ) -> Sequence[ModelEntry]:
        """The deployments to try, best first (empty when all are cooling). ``preferred``
        names a deployment to put first while it may be tried; ``session`` is what a sticky
        model hashes (``session_of``)."""
        routing = model.routing
        if routing is None:
            return [model]
        if (
            routing.strategy is Strategy.WEIGHTED
            and session is None
            and preferred is None
            and not self.health.any_cooling()
        ):  # the default, with nothing to leave out: one draw
            drawn = weighted_first(routing.cumulative, self._rng.random())
            return rotated(routing.deployments, drawn)
        candidates = self._candidates(routing)
        if routing.sticky and session is not None:
            picked = sticky(session, candidates)
        else:
            picked = order(routing.strategy, candidates, self._rng, self._explore)
        first = None
        if preferred is not None:
            first = next((c.index for c in candidates if c.name == preferred), None)
        if first is not None:
            picked.remove(first)
            picked.insert(0, first)
        return [routing.deployments[i] for i in picked]

    async def within_caps(self, deployment: ModelEntry) -> bool:
        """May one more request go to this deployment under its RPM and TPM caps? A request
        let through counts against its RPM window."""
        if deployment.rpm_cap is None and deployment.tpm_cap is None:
            return True
        if deployment.tpm_cap is not None:
            spent = await self._tokens.add(deployment.health_key, 0)
            if spent >= deployment.tpm_cap:
                return False
        if deployment.rpm_cap is not None:
            decision = await self._rpm.admit(deployment.health_key, deployment.rpm_cap)
            return decision.allowed
        return True

    async def spent(self, deployment: ModelEntry, tokens: int) -> None:
        """Tokens a deployment with a TPM cap was billed."""
        if deployment.tpm_cap is not None and tokens > 0:
            await self._tokens.add(deployment.health_key, tokens)
