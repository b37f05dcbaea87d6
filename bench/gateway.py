"""A ``lowart serve`` process for the bench: one user with limits on, models, and its counters.

The user has an RPM limit and a token quota set so high that they never refuse, so every request
still goes through the key check, the RPM window, the quota reservation, exact billing and the
metrics.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocking_http import call
from procs import LOWART, WORK, cause, free_port, log, spawn

RPM_LIMIT = 100_000_000
TOKEN_QUOTA = 10**15
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+\d.eE]+|NaN|[+-]Inf)$")


@dataclass
class Gateway:
    """A running gateway: where it listens, its admin and user keys, and its process."""

    name: str
    base: str
    admin_key: str
    user_id: str
    user_key: str
    pid: int
    home: Path

    @property
    def chat_url(self) -> str:
        return f"{self.base}/v1/chat/completions"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.user_key}"}

    def admin(self, method: str, path: str, body: object = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        status, raw = call(method, self.base + path, body, headers)
        if status not in (200, 201):
            raise RuntimeError(f"{self.name}: {method} {path}: HTTP {status}: {raw[:500]!r}")
        return json.loads(raw)

    def add_model(self, model_id: str, base_url: str, upstream_model: str = "gpt-4o") -> None:
        """An OpenAI-compatible model at ``base_url`` (the ``/v1`` URL)."""
        model = {
            "model_id": model_id,
            "vendor_type": "OpenAI",
            "base_url": base_url,
            "api_key": "sk-bench",
            "upstream_model": upstream_model,
        }
        self.admin("POST", "/admin/models", model)

    def settle(self) -> None:
        """Write the queued usage (``GET /admin/usage`` settles before it reads)."""
        self.admin("GET", "/admin/usage")

    def usage_rows(self) -> list[tuple[str, str, int, int, int]]:
        """(model, status, rows, estimated rows, tokens) from the SQLite file, after settling."""
        self.settle()
        uri = f"file:{self.home / 'lowart.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            rows = conn.execute(
                "SELECT requested_model, status, count(*), sum(estimated), "
                "sum(prompt_tokens + completion_tokens) FROM usage_records "
                "GROUP BY requested_model, status ORDER BY requested_model, status"
            ).fetchall()
        return [(str(m), str(s), int(n), int(e or 0), int(t or 0)) for m, s, n, e, t in rows]

    def billed(self, model_id: str, status: str = "ok") -> int:
        """How many usage rows of ``status`` the model has."""
        return sum(n for m, s, n, _, _ in self.usage_rows() if m == model_id and s == status)

    def metrics(self) -> dict[str, float]:
        """``GET /metrics`` as ``{'name{labels}': value}``."""
        status, raw = call("GET", self.base + "/metrics")
        if status != 200:
            raise RuntimeError(f"{self.name}: GET /metrics: HTTP {status}")
        values: dict[str, float] = {}
        for line in raw.decode(errors="replace").splitlines():
            match = _SERIES.match(line)
            if match:
                values[match[1] + (match[2] or "")] = float(match[3])
        return values

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the series of ``name`` whose labels include ``labels``."""
        total = 0.0
        for key, value in self.metrics().items():
            series, _, rest = key.partition("{")
            if series != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += value
        return total


def _wait_listening(proc: subprocess.Popen[bytes], logfile: Path, timeout: float = 60) -> None:
    """Until the gateway says it listens (a port that merely answers may be another process's,
    on a machine where other work binds free ports too)."""
    deadline = time.monotonic() + timeout
    while b"Lowart listening on" not in logfile.read_bytes():
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not listening after {timeout:.0f} s")
        time.sleep(0.05)


def start_gateway(
    stack: contextlib.ExitStack,
    name: str,
    env: Mapping[str, str] | None = None,
    user_id: str = "bench",
    *,
    command: Sequence[str] = (str(LOWART),),
    timeout: float = 60,
) -> Gateway:
    """``lowart serve`` in ``WORK/<name>`` on SQLite, with a user whose limits are on.
    ``command`` runs ``lowart`` (e.g. under valgrind, with a longer start-up ``timeout``)."""
    home = WORK / name
    home.mkdir(parents=True)
    port = int((env or {}).get("PORT") or 0) or free_port()
    admin_key = "bench-admin-" + secrets.token_hex(16)
    full_env = {
        "PORT": str(port),
        "ADMIN_KEY": admin_key,
        "MASTER_KEY": secrets.token_hex(32),
        "LOG_LEVEL": "warning",
        **(env or {}),
    }
    started = time.monotonic()
    proc = spawn(stack, name, [*command, "serve"], full_env, home)
    base = f"http://127.0.0.1:{port}"
    quota = {"user_id": user_id, "rpm_limit": RPM_LIMIT, "token_quota": TOKEN_QUOTA}
    headers = {"Authorization": f"Bearer {admin_key}"}
    try:
        _wait_listening(proc, WORK / f"{name}.log", timeout)
        status, raw = call("POST", base + "/admin/users/quota", quota, headers)
    except (RuntimeError, OSError) as exc:
        raise RuntimeError(f"{name} failed to start: {cause(WORK / f'{name}.log')}") from exc
    if status != 201:
        raise RuntimeError(f"{name}: creating the user: HTTP {status}: {raw[:300]!r}")
    gw = Gateway(name, base, admin_key, user_id, json.loads(raw)["api_key"], proc.pid, home)
    user = gw.admin("GET", f"/admin/users/{user_id}")
    log(
        f"{name}: up in {time.monotonic() - started:.1f} s (pid {proc.pid}); user {user_id!r} "
        f"has rpm_limit={user['rpm_limit']:,} and token_quota={user['token_quota']:,}"
    )
    return gw
