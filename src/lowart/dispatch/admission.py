"""Admission: the checks a request passes before any upstream is tried (docs/architecture.md,
"Admission"): the model and its chain, the quota reservation, the budgets, the TPM and RPM
windows, all read from memory (or one Redis script each)."""

from __future__ import annotations

from typing import Any

from lowart.catalog.directory import Directory
from lowart.dispatch.attempt import (
    MAX_TOKEN_FIELDS,
    Admission,
    requested_choices,
    requested_max_tokens,
)
from lowart.dispatch.billing import Billing
from lowart.dispatch.budgets import BudgetGate, worst_case
from lowart.dispatch.rates import Rates
from lowart.errors import (
    InvalidRequest,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
)
from lowart.limits.base import QuotaLedger, Reservation, RpmDecision
from lowart.model_entry import ModelEntry, OperationKind
from lowart.principal import Principal
from lowart.telemetry.metrics import Metrics
from lowart.usage.estimate import admission_estimate
from lowart.usage.recorder import UsageRecorder

_CHAT, _IMAGES, _EMBEDDINGS = (
    OperationKind.CHAT,
    OperationKind.IMAGES,
    OperationKind.EMBEDDINGS,
)  # an enum member lookup costs ~250 ns (3.11)
_SERVES = {_CHAT: "chat", _IMAGES: "generate images", _EMBEDDINGS: "serve embeddings"}


class Admissions:
    """The dispatcher's admission half (its state is set by ``Dispatcher``)."""

    _directory: Directory
    _rates: Rates
    _quota: QuotaLedger
    _budgets: BudgetGate
    _billing: Billing
    _recorder: UsageRecorder
    _metrics: Metrics
    _default_reserve: int

    async def admit(
        self,
        principal: Principal,
        model_id: str,
        body: dict[str, Any],
        body_bytes: int,
        *,
        count_rpm: bool = True,
        operation: OperationKind = OperationKind.CHAT,
    ) -> Admission:
        """Check the model, the quota, the budgets and the RPM window; raise when the request
        may not run.

        A job is counted against the RPM window when it is submitted, not again when it runs.
        While usage cannot reach the database, nothing is admitted: no request goes unbilled.
        """
        if not self._recorder.healthy:
            raise ServiceUnavailable("Usage cannot be recorded right now; try again soon.")
        chain = self._chain(principal, model_id, operation)
        max_tokens = requested_max_tokens(body) if operation is not _EMBEDDINGS else None
        # images: n is pictures, one answer; embeddings: no completion, the input only
        choices = requested_choices(body) if operation is _CHAT else int(operation is _IMAGES)
        reservation = await self._reserve(principal, body_bytes, max_tokens, choices)
        if reservation is not None and reservation.capped and max_tokens is not None:
            max_tokens = await self._fit(reservation, body, body_bytes, choices)
        now = self._budgets.clock()
        admission = Admission(
            principal, model_id, chain, reservation, None, max_tokens, choices, operation, now
        )
        try:
            await self._limit(admission, body, body_bytes, count_rpm=count_rpm)
        except RateLimited:  # a budget or the RPM window: give back what was held
            await self._billing.give_back(admission)
            raise
        self._recorder.key_used(principal.key_id)
        return admission

    async def _limit(
        self, admission: Admission, body: dict[str, Any], body_bytes: int, *, count_rpm: bool
    ) -> None:
        """Hold the worst-case cost on the budgets (the tokens as reserved and the images, at
        the chain's highest prices), count the tokens in the TPM windows, then the RPM window."""
        principal, now = admission.principal, admission.admitted_at
        per_choice = admission.max_tokens or self._default_reserve
        tokens = admission_estimate(body_bytes) + admission.choices * per_choice
        if principal.counts_tokens:
            admission.tpm = await self._rates.count_tokens(principal, tokens)
        if principal.budgets:
            images = requested_choices(body) if admission.operation is _IMAGES else 0
            want = worst_case(admission.chain, tokens, images, now)
            admission.holds = await self._budgets.hold(principal, want, tokens, now)
        if count_rpm:
            admission.rpm = await self.count_request(principal)

    async def admit_job(
        self, principal: Principal, model_id: str, *, operation: OperationKind = OperationKind.CHAT
    ) -> RpmDecision | None:
        """A job submitted now, run later: its model is checked and the RPM window counts it
        now; its quota is reserved when it runs (``admit`` with ``count_rpm=False``), so that
        each limit applies once (docs/api.md, "Jobs")."""
        if not self._recorder.healthy:
            raise ServiceUnavailable("Usage cannot be recorded right now; try again soon.")
        self._chain(principal, model_id, operation)
        rpm = await self.count_request(principal)
        self._recorder.key_used(principal.key_id)
        return rpm

    def _chain(
        self, principal: Principal, model_id: str, operation: OperationKind
    ) -> list[ModelEntry]:
        """The model and the fallbacks the caller may use (docs/api.md, "Chat"): a fallback
        outside the caller's allowlist is skipped, never served in its stead."""
        chain = self._directory.chain(model_id) if principal.may_use(model_id) else []
        if not chain:
            raise ModelNotFound(model_id)
        if principal.models is not None:
            chain = [m for m in chain if principal.may_use(m.model_id)]
        if operation not in chain[0].operations or len(chain) > 1:
            # only models serving the operation, fallbacks too (params.kinds may narrow chat)
            chain = [m for m in chain if operation in m.operations]
            if not chain or chain[0].model_id != model_id:
                raise InvalidRequest(
                    f"The model '{model_id}' does not {_SERVES[operation]}.", param="model"
                )
        return chain

    async def count_request(self, principal: Principal) -> RpmDecision | None:
        """Count one request against the caller's RPM windows; raise when one is full."""
        return await self._rates.count_request(principal)

    async def _reserve(
        self, principal: Principal, body_bytes: int, max_tokens: int | None, choices: int
    ) -> Reservation | None:
        if principal.token_quota is None:
            return None
        per_choice = max_tokens or self._default_reserve
        want = admission_estimate(body_bytes) + choices * per_choice
        settled = self._directory.token_used(principal.user_id)
        reservation = await self._quota.reserve(
            principal.user_id, principal.token_quota, settled, want
        )
        if reservation is None:
            self._metrics.rate_limited.labels(reason="quota").inc()
            raise QuotaExceeded("You exceeded your token quota.")
        return reservation

    async def _fit(
        self, reservation: Reservation, body: dict[str, Any], body_bytes: int, choices: int
    ) -> int:
        """A capped reservation for a request with ``max_tokens``: lower ``max_tokens`` so that
        its ``n`` choices fit in what the reservation covers, and cannot overspend the quota."""
        room = (reservation.amount - admission_estimate(body_bytes)) // choices
        if room < 1:
            await self._quota.settle(reservation, 0)
            self._metrics.rate_limited.labels(reason="quota").inc()
            raise QuotaExceeded("You exceeded your token quota.")
        for name in MAX_TOKEN_FIELDS:
            if name in body:
                body[name] = room
        return room
