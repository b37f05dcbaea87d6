"""Rate windows at admission: requests per minute (the key's own and the user's), and tokens per
minute, where a request's token reservation counts in the TPM windows of its user and of its
key, and its real usage replaces it when it ends (docs/api.md, "Rate limits")."""

from __future__ import annotations

from collections.abc import Sequence

from lowart.errors import RateLimited, TokensNeverFit
from lowart.limits.base import RateLimiter, RpmDecision
from lowart.limits.tpm import TokenLimiter, TpmDecision
from lowart.principal import Principal
from lowart.telemetry.metrics import Metrics


def tightest(decisions: Sequence[TpmDecision]) -> TpmDecision | None:
    """The decision with the fewest tokens left: the one the headers tell."""
    return min(decisions, key=lambda d: d.remaining, default=None)


class Rates:
    """Counts requests and tokens in the windows that apply to a caller."""

    def __init__(self, rpm: RateLimiter, limiter: TokenLimiter, metrics: Metrics) -> None:
        self._rpm = rpm
        self._limiter = limiter
        self._metrics = metrics

    async def count_request(self, principal: Principal) -> RpmDecision | None:
        """Count one request against the RPM windows of the caller's key (its own limit) and
        user; raise when one is full. The headers tell the tighter one."""
        decisions = []
        for window, limit in (
            ("key:" + principal.key_id, principal.key_rpm_limit),
            (principal.user_id, principal.rpm_limit),
            ("team:" + (principal.team_id or ""), principal.team_rpm_limit),
        ):
            if limit is None:
                continue
            rpm = await self._rpm.admit(window, limit)
            if not rpm.allowed:
                self._metrics.rate_limited.labels(reason="rpm").inc()
                raise RateLimited(
                    f"Rate limit reached: {rpm.limit} requests per minute.",
                    retry_after=rpm.reset_s,
                    extra_headers=rpm.headers(),
                )
            decisions.append(rpm)
        return min(decisions, key=lambda d: d.remaining, default=None)

    async def count_tokens(self, principal: Principal, tokens: int) -> list[TpmDecision]:
        """Count ``tokens`` in each window, or give back what was counted and raise 429."""
        decisions: list[TpmDecision] = []
        windows = (
            ("user:" + principal.user_id, principal.tpm_limit),
            ("key:" + principal.key_id, principal.key_tpm_limit),
            ("team:" + (principal.team_id or ""), principal.team_tpm_limit),
        )
        for key, limit in windows:
            if limit is None:
                continue
            if tokens > limit:
                await self.correct(decisions, 0)
                self._metrics.rate_limited.labels(reason="tpm").inc()
                raise TokensNeverFit(
                    f"This request reserves {tokens} tokens, more than the limit of {limit} "
                    "tokens per minute: it can never fit. Lower max_tokens or shorten the prompt."
                )
            decision = await self._limiter.admit(key, limit, tokens)
            if not decision.allowed:
                await self.correct(decisions, 0)
                self._metrics.rate_limited.labels(reason="tpm").inc()
                raise RateLimited(
                    f"Rate limit reached: {limit} tokens per minute.",
                    retry_after=decision.reset_s,
                    extra_headers=decision.headers(),
                )
            decisions.append(decision)
        return decisions

    async def correct(self, decisions: Sequence[TpmDecision], actual: int) -> None:
        """Replace the counted reservation with the tokens really used (0: none)."""
        for decision in decisions:
            await self._limiter.correct(decision, actual)
