"""Instructions per request under callgrind: the steadiest figure for "did this change make the
hot path slower?", since it counts work rather than time and so ignores the machine's load.

``lowart serve`` runs under ``valgrind --tool=callgrind`` with instrumentation off; the fake
OpenAI upstream (``lowart mock-upstream``) runs as a plain process. After a warm-up, callgrind is
switched on for a fixed number of requests sent one after another on one keep-alive connection,
switched off, and its totals (every thread of the gateway: the event loop and the SQLite
driver's thread) are divided by the count. Non-streaming and streaming are measured alike; the
user has an RPM limit and a quota, so the key check, the RPM window, the reservation, billing
and metrics are all on. Each is measured on a model with one deployment (``bench``) and on one
with four (``bench4``, weighted, docs/api.md "Deployments"), on the same upstream.

Run it twice, on the commits to compare, in one session on one machine:
``.venv/bin/python bench/instructions.py`` (``BENCH_CALLGRIND_REQUESTS``, default 300). The
table is printed and written to ``bench/out/instructions.md``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from gateway import Gateway, start_gateway
from procs import OUT, PYTHON, WORK, free_port, log, spawn, wait_port

REQUESTS = int(os.environ.get("BENCH_CALLGRIND_REQUESTS", "300"))
WARMUP = 50
STREAM_WORDS = 20  # the fake echoes them: a stream of 22 chunks (role, words, finish)
# Periodic work (cache reloads, job polls, heartbeats, sweeps) costs by the second, not by the
# request, and callgrind slows the clock's share many-fold: spaced out, so that the counts are
# the requests' own and repeat from run to run.
QUIET = {
    "CACHE_REFRESH_S": "3600",
    "JOB_POLL_S": "3600",
    "JOB_LEASE_S": "7200",
    "JOB_HEARTBEAT_S": "3600",
    "INSTANCE_HEARTBEAT_S": "3600",
    "INSTANCE_DEAD_AFTER_S": "7200",
    "RETENTION_SWEEP_S": "3600",
}
MODES = (
    ("non-streaming", False, "bench"),
    ("streaming", True, "bench"),
    ("non-streaming, 4 deployments", False, "bench4"),
    ("streaming, 4 deployments", True, "bench4"),
)
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


def _body(stream: bool, model: str = "bench") -> bytes:
    words = " ".join(f"w{i}" for i in range(STREAM_WORDS))
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": words}],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def _send(conn: http.client.HTTPConnection, gw: Gateway, body: bytes, count: int) -> None:
    headers = {**gw.auth, "Content-Type": "application/json"}
    for _ in range(count):
        conn.request("POST", "/v1/chat/completions", body, headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")


def _counted(pid: int, out: Path, run: Callable[[], None]) -> int:
    """Instructions callgrind counted while ``run`` ran."""
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
    run()
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        total += sum(int(n) for n in _TOTALS.findall(dump.read_bytes()))
    return total


def measure() -> dict[str, float]:
    """Instructions per request, by mode."""
    OUT.mkdir(exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        up_port = free_port()
        upstream = spawn(
            stack,
            "callgrind-upstream",
            [str(PYTHON), "-m", "lowart", "mock-upstream", "--port", str(up_port)],
            {},
            WORK,
        )
        wait_port(up_port, "the fake upstream", upstream)
        out = WORK / "callgrind" / "lowart.out"
        out.parent.mkdir(exist_ok=True)
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            str(PYTHON),
            "-m",
            "lowart",
        ]
        name = f"callgrind-{int(time.time())}"
        gw = start_gateway(stack, name, QUIET, command=wrapper, timeout=600)
        upstream_url = f"http://127.0.0.1:{up_port}/v1"
        gw.add_model("bench", upstream_url)
        gw.add_model("bench4", upstream_url)
        for n in range(3):
            deployment = {"id": f"d{n}", "vendor_type": "OpenAI", "base_url": upstream_url}
            gw.admin("POST", "/admin/models/bench4/deployments", {**deployment, "api_key": "sk"})
        conn = http.client.HTTPConnection("127.0.0.1", int(gw.base.rsplit(":", 1)[1]), timeout=120)
        for mode, stream, model in MODES:
            body = _body(stream, model)
            _send(conn, gw, body, WARMUP)
            total = _counted(gw.pid, out, lambda b=body: _send(conn, gw, b, REQUESTS))
            figures[mode] = total / REQUESTS
            log(f"{mode}: {figures[mode]:,.0f} instructions per request")
        conn.close()
    return figures


def main() -> int:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    figures = measure()
    lines = [
        f"Instructions per request under callgrind, commit {commit}, {REQUESTS} requests each",
        "",
        "| mode | instructions per request |",
        "| --- | ---: |",
        *(f"| {mode} | {value:,.0f} |" for mode, value in figures.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (OUT / "instructions.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
