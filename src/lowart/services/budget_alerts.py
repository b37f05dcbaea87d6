"""Budget alerts: when a budget's spend reaches 80 % and 100 % in a period, a signed webhook is
delivered to ``BUDGET_WEBHOOK_URL`` at least once (docs/api.md, "Budget alerts").

Crossings are read from the directory's snapshot (no query of their own); each becomes a row of
``budget_alerts`` whose id, ``<budget>:<period>:<threshold>``, is the idempotency id the
receiver sees, so two instances raise it once and a receiver can drop a repeat. Delivery goes
through a session whose connections the SSRF policy checks, signed with HMAC-SHA256 over the
body, and is retried with backoff until the receiver answers 2xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from lowart.catalog.directory import Directory
from lowart.money import Budget, decimal_string, period_of
from lowart.storage.alerts import Alert, AlertRepository
from lowart.storage.budgets import split_key

log = structlog.get_logger()

THRESHOLDS = (80, 100)
SIGNATURE = "x-lowart-signature"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of the body, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def crossed(spent: int, budget: Budget) -> list[int]:
    """The thresholds (percent) the spend has reached."""
    return [t for t in THRESHOLDS if budget.amount and spent * 100 >= budget.amount * t]


@dataclass(frozen=True)
class AlertConfig:
    url: str
    secret: str
    retry_s: float  # the first retry's delay; doubled each time, at most 60 times it
    timeout_s: float
    currency: str
    tz: ZoneInfo


class BudgetAlerts:
    """Raises alerts from the directory's spend, and delivers them."""

    def __init__(
        self,
        repo: AlertRepository,
        directory: Directory,
        session: aiohttp.ClientSession,
        config: AlertConfig,
        clock: Callable[[], float],
    ) -> None:
        self._repo = repo
        self._directory = directory
        self._session = session
        self._config = config
        self._clock = clock
        self._raised: set[str] = set()  # ids known to exist: no query for them again

    def _payload(self, key: str, spent: int, budget: Budget, threshold: int) -> dict[str, object]:
        scope, owner, label = split_key(key)
        in_tokens = scope.startswith("tokens-")
        return {
            "id": f"{key}:{threshold}",
            "scope": scope,
            "owner": owner,
            "period": label,
            "budget_period": budget.period,
            "threshold": threshold,
            "amount": str(budget.amount) if in_tokens else decimal_string(budget.amount),
            "spent": str(spent) if in_tokens else decimal_string(spent),
            "unit": "tokens" if in_tokens else self._config.currency,
        }

    async def raise_crossed(self) -> int:
        """Record an alert for each threshold reached in a current period; returns how many."""
        now = self._clock()
        due: dict[str, dict[str, object]] = {}
        for key, spent, budget in self._directory.standings():
            if split_key(key)[2] != period_of(budget.period, now, self._config.tz).label:
                continue  # a period the budget no longer counts in
            for threshold in crossed(spent, budget):
                payload = self._payload(key, spent, budget, threshold)
                if payload["id"] not in self._raised:
                    due[str(payload["id"])] = payload
        known = await self._repo.known(list(due))
        self._raised |= known
        raised = 0
        for alert_id, payload in due.items():
            if alert_id in known:
                continue
            body = json.dumps(payload | {"created_at": now}, separators=(",", ":"))
            raised += await self._repo.raise_alert(alert_id, body, now)
            self._raised.add(alert_id)
        return raised

    async def _deliver(self, alert: Alert) -> None:
        body = alert.payload.encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE: signature(self._config.secret, body),
            "idempotency-key": alert.id,
        }
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        try:
            async with self._session.post(
                self._config.url, data=body, headers=headers, timeout=timeout
            ) as response:
                ok = 200 <= response.status < 300
                status: object = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            ok, status = False, type(exc).__name__
        now = self._clock()
        if ok:
            await self._repo.delivered(alert.id, now)
            return
        delay = min(self._config.retry_s * 2**alert.attempts, self._config.retry_s * 60)
        log.warning("budget_alert_failed", alert_id=alert.id, status=status, retry_in_s=delay)
        await self._repo.failed(alert.id, now + delay)

    async def deliver_due(self) -> int:
        """Try each alert due now once; returns how many were tried."""
        lease_s = self._config.timeout_s + self._config.retry_s
        alerts = await self._repo.claim_due(self._clock(), lease_s)
        for alert in alerts:
            await self._deliver(alert)
        return len(alerts)

    async def run(self) -> None:
        """Raise and deliver every ``retry_s``, until cancelled."""
        while True:
            try:
                await self.raise_crossed()
                await self.deliver_due()
            except Exception:  # the loop must outlive a database outage
                log.exception("budget_alerts_failed")
            await asyncio.sleep(self._config.retry_s)
