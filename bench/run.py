"""``make bench``: Lowart against its floor and ceiling, measured side by side in one run.

Targets, each measured with ``wrk`` non-streaming and streaming, at 1 and 64 connections:

- ``nginx``: the fake upstream (``../shared/peers/upstream-nginx.conf``) called directly,
  the ceiling;
- ``passthrough``: ``bench/passthrough.py``, a bare ASGI + aiohttp proxy, the floor any Python
  design pays;
- ``lowart``: ``lowart serve`` on SQLite, with the key check, RPM limit, token quota, billing and
  metrics all on (the limits are set so high that they never refuse).

The report (a markdown table with ratios against the pass-through, plus the machine) is printed
and written to ``bench/out/latest.md``. Settings come from the environment:

- ``BENCH_SECONDS``: seconds per measurement (default 10), after a 2 s warm-up.

To add a peer (LiteLLM, Portkey, ...), write a ``start_*`` function that starts it on the stack
and returns a :class:`Target`, and add it in :func:`start_targets`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
OUT = BENCH / "out"
NGINX_CONF = REPO.parent / "shared" / "peers" / "upstream-nginx.conf"
UPSTREAM = "http://127.0.0.1:9999"
PYTHON = REPO / ".venv" / "bin" / "python"
LOWART = REPO / ".venv" / "bin" / "lowart"

MODES = ("json", "sse")  # non-streaming, streaming
MODE_LABEL = {"json": "non-stream", "sse": "stream"}
CONNECTIONS = (1, 64)
WARMUP_S = 2
BASELINE = "passthrough"

RPM_LIMIT = 100_000_000
TOKEN_QUOTA = 10**15


@dataclass(frozen=True)
class Target:
    """Something that answers ``POST .../chat/completions`` the OpenAI way."""

    name: str
    urls: Mapping[str, str]  # mode -> full URL to POST to
    models: Mapping[str, str]  # mode -> the "model" in the body
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self, mode: str) -> str:
        payload: dict[str, Any] = {
            "model": self.models[mode],
            "messages": [{"role": "user", "content": "hi"}],
        }
        if mode == "sse":
            payload["stream"] = True
        return json.dumps(payload, separators=(",", ":"))


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    target: str
    mode: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass
class Lowart:
    """What the report needs from the gateway after the runs."""

    base: str
    admin_key: str
    user_id: str
    requests_sent: int = 0


# --- processes -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def find_tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).exists()), None
    )


def ensure_tools() -> tuple[str, str]:
    """wrk and nginx, installed from Debian when missing; returns their paths."""
    if find_tool("wrk") is None or find_tool("nginx") is None:
        log("installing wrk and nginx-light with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "wrk", "nginx-light"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    wrk, nginx = find_tool("wrk"), find_tool("nginx")
    if wrk is None or nginx is None:
        raise SystemExit("wrk and nginx are needed: apt-get install -y wrk nginx-light")
    return wrk, nginx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, name: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while not port_open(port):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {OUT}/work/")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not listen on port {port} within 30 s")
        time.sleep(0.05)


def spawn(
    stack: contextlib.ExitStack,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
) -> subprocess.Popen[bytes]:
    """Start a process with its output in ``cwd/<name>.log``, stopped when the stack closes."""
    logfile = (cwd / f"{name}.log").open("wb")
    stack.callback(logfile.close)
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, cwd=cwd, stdout=logfile, stderr=subprocess.STDOUT
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    stack.callback(stop)
    return proc


# --- HTTP ------------------------------------------------------------------------------------


def http(
    method: str, url: str, body: object = None, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def verify(target: Target) -> None:
    """One request per mode must succeed before anything is measured."""
    for mode in MODES:
        status, raw = http("POST", target.urls[mode], json.loads(target.body(mode)), target.headers)
        text = raw.decode(errors="replace")
        ok = status == 200 and ("[DONE]" in text if mode == "sse" else '"choices"' in text)
        if not ok:
            raise RuntimeError(f"{target.name} {mode}: HTTP {status}: {text[:500]}")
    log(f"{target.name}: one non-stream and one stream request answered correctly")


# --- targets ---------------------------------------------------------------------------------


def start_nginx(stack: contextlib.ExitStack, nginx: str, work: Path) -> Target:
    if not NGINX_CONF.exists():
        raise SystemExit(f"missing {NGINX_CONF}")
    if port_open(9999):
        raise SystemExit("port 9999 is taken; the fake upstream needs it (stop whatever holds it)")
    scratch = work / "nginx"
    scratch.mkdir(parents=True)
    command = [nginx, "-p", str(scratch), "-c", str(NGINX_CONF.resolve())]
    subprocess.run([*command, "-e", "upstream-nginx.err"], check=True)
    stack.callback(subprocess.run, [*command, "-e", "upstream-nginx.err", "-s", "stop"])
    wait_port(9999, "nginx")
    return Target(
        name="nginx",
        urls={mode: f"{UPSTREAM}/{mode}/v1/chat/completions" for mode in MODES},
        models=dict.fromkeys(MODES, "gpt-4o"),
    )


def start_passthrough(stack: contextlib.ExitStack, work: Path) -> Target:
    """One pass-through process per mode: the fake upstream serves each at its own path."""
    urls = {}
    for mode in MODES:
        port = free_port()
        env = {"UPSTREAM": f"{UPSTREAM}/{mode}/v1", "PORT": str(port)}
        argv = [str(PYTHON), str(BENCH / "passthrough.py")]
        proc = spawn(stack, f"passthrough-{mode}", argv, env, work)
        wait_port(port, f"passthrough ({mode})", proc)
        urls[mode] = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Target(name="passthrough", urls=urls, models=dict.fromkeys(MODES, "gpt-4o"))


def admin(gw: Lowart, method: str, path: str, body: object = None) -> Any:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    status, raw = http(method, gw.base + path, body, headers)
    if status not in (200, 201):
        raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:500]!r}")
    return json.loads(raw)


def start_lowart(stack: contextlib.ExitStack, work: Path) -> tuple[Target, Lowart]:
    """``lowart serve`` on SQLite with one user and a model per mode."""
    home = work / "lowart"
    home.mkdir()
    port = free_port()
    env = {
        "PORT": str(port),
        "ADMIN_KEY": "bench-admin-" + secrets.token_hex(16),
        "MASTER_KEY": secrets.token_hex(32),
        "LOG_LEVEL": "warning",
    }
    proc = spawn(stack, "lowart", [str(LOWART), "serve"], env, home)
    wait_port(port, "lowart", proc)
    gw = Lowart(base=f"http://127.0.0.1:{port}", admin_key=env["ADMIN_KEY"], user_id="bench")
    quota = {"user_id": gw.user_id, "rpm_limit": RPM_LIMIT, "token_quota": TOKEN_QUOTA}
    user_key = admin(gw, "POST", "/admin/users/quota", quota)["api_key"]
    user = admin(gw, "GET", f"/admin/users/{gw.user_id}")
    log(
        f"lowart: user {gw.user_id!r} has rpm_limit={user['rpm_limit']} and "
        f"token_quota={user['token_quota']}: the RPM limit and the quota are ON (never refusing)"
    )
    for mode in MODES:
        model = {
            "model_id": f"bench-{mode}",
            "vendor_type": "OpenAI",
            "base_url": f"{UPSTREAM}/{mode}/v1",
            "api_key": "sk-bench",
            "upstream_model": "gpt-4o",
        }
        admin(gw, "POST", "/admin/models", model)
    target = Target(
        name="lowart",
        urls=dict.fromkeys(MODES, f"{gw.base}/v1/chat/completions"),
        models={mode: f"bench-{mode}" for mode in MODES},
        headers={"Authorization": f"Bearer {user_key}"},
    )
    return target, gw


# --- wrk -------------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"unreadable wrk latency {value!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(text: str) -> tuple[float, float, float, int, int]:
    """Requests/s, p50 ms, p99 ms, requests completed and errors from ``wrk --latency``."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    done = re.search(r"(\d+) requests in", text)
    if not (rps and p50 and p99 and done):
        raise ValueError(f"unreadable wrk output:\n{text}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(non2xx[1]) if non2xx else 0
    return float(rps[1]), _ms(p50[1]), _ms(p99[1]), int(done[1]), errors


def wrk_run(
    wrk: str, target: Target, mode: str, connections: int, seconds: int
) -> tuple[float, float, float, int, int]:
    auth = target.headers.get("Authorization", "")
    env = {**os.environ, "BENCH_BODY": target.body(mode), "BENCH_AUTH": auth}
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(BENCH / "post.lua"), target.urls[mode]]
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return parse_wrk(done.stdout)


def measure(wrk: str, target: Target, seconds: int) -> Iterator[tuple[Result, int]]:
    """Each mode and connection count; yields the result and every request sent (with warm-up)."""
    for mode in MODES:
        for connections in CONNECTIONS:
            warm = wrk_run(wrk, target, mode, connections, WARMUP_S)
            rps, p50, p99, done, errors = wrk_run(wrk, target, mode, connections, seconds)
            result = Result(target.name, mode, connections, rps, p50, p99, done, errors)
            log(
                f"{target.name:12} {MODE_LABEL[mode]:10} c={connections:<3} "
                f"{rps:10.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  errors {errors}"
            )
            yield result, done + warm[3]


# --- report ----------------------------------------------------------------------------------


def table(results: Sequence[Result]) -> str:
    base = {(r.mode, r.connections): r for r in results if r.target == BASELINE}
    lines = [
        "| target | mode | conns | req/s | p50 ms | p99 ms | errors "
        f"| req/s vs {BASELINE} | added p50 vs {BASELINE} (ms) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ref = base.get((r.mode, r.connections))
        ratio = f"{r.rps / ref.rps:.2f}x" if ref and ref.rps else "-"
        added = f"{r.p50_ms - ref.p50_ms:+.3f}" if ref else "-"
        lines.append(
            f"| {r.target} | {MODE_LABEL[r.mode]} | {r.connections} | {r.rps:,.0f} "
            f"| {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.errors} | {ratio} | {added} |"
        )
    return "\n".join(lines)


def lowart_state(gw: Lowart) -> str:
    """Evidence that billing and metrics were on during the runs."""
    time.sleep(1)  # streams wrk cut at the end of the last run finish being billed
    usage = admin(gw, "GET", "/admin/usage")["data"]  # settles the queued usage first
    by_model = admin(gw, "GET", "/admin/usage?group_by=model")["data"]
    user = admin(gw, "GET", f"/admin/users/{gw.user_id}")
    status, raw = http("GET", gw.base + "/metrics")
    metrics = raw.decode(errors="replace") if status == 200 else ""
    sums: dict[str, float] = {}
    for line in metrics.splitlines():
        match = re.match(r"(gateway_(?:tokens|requests)_total)(\{[^}]*\})? ([\d.e+]+)$", line)
        if match:
            key = match[1] + (match[2] or "")
            sums[key] = sums.get(key, 0.0) + float(match[3])
    total = usage[0] if usage else {"requests": 0, "errors": 0, "total_tokens": 0}
    lines = [
        f"- Requests sent to Lowart (verification, warm-ups, runs; wrk's completed count): "
        f"{gw.requests_sent:,}",
        "  (wrk does not count the requests still in flight when it stops, up to one per "
        "connection per run, which the gateway still serves and bills)",
        f"- Billed by `GET /admin/usage`: {total['requests']:,} requests, "
        f"{total['errors']:,} errors, {total['total_tokens']:,} tokens",
    ]
    lines += [
        f"  - {m['model']}: {m['requests']:,} requests, {m['total_tokens']:,} tokens"
        for m in by_model
    ]
    lines.append(
        f"- User `{gw.user_id}`: token_used {user['token_used']:,} of quota "
        f"{user['token_quota']:,}; rpm_limit {user['rpm_limit']:,}"
    )
    lines.append(f"- `GET /metrics` (HTTP {status}):")
    lines += [f"  - `{key} {value:,.0f}`" for key, value in sorted(sums.items())]
    if not sums:
        lines.append("  - no gateway_tokens_total / gateway_requests_total series found")
    return "\n".join(lines)


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def out(argv: Sequence[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
        except OSError:
            return "unknown"
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else "unknown"

    return [
        f"- Date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- `uname -a`: {out(['uname', '-a'])}",
        f"- `nproc`: {out(['nproc'])}",
        f"- CPU: {cpu}",
        f"- Load average at the end (other work shares the machine): {load_average()}",
        f"- Python {platform.python_version()}; {out(['wrk', '--version'])}; "
        f"{out([find_tool('nginx') or 'nginx', '-v'])}",
        f"- Lowart commit: {out(['git', 'describe', '--always', '--dirty'])}",
    ]


def command(seconds: int) -> str:
    if "MAKELEVEL" in os.environ:
        return f"BENCH_SECONDS={seconds} make bench"
    return f"BENCH_SECONDS={seconds} .venv/bin/python bench/run.py"


def report(results: Sequence[Result], gw: Lowart, seconds: int) -> str:
    return "\n".join(
        [
            "# Lowart benchmark (first version)",
            "",
            *machine(),
            f"- Command: `{command(seconds)}` (each row: {WARMUP_S} s warm-up, then "
            f"`wrk -t1 -cN -d{seconds}s --latency -s bench/post.lua URL`)",
            "",
            "One process each; wrk, nginx and the process measured share the machine.",
            "",
            table(results),
            "",
            "## Lowart had its key check, RPM limit, quota, billing and metrics on",
            "",
            lowart_state(gw),
            "",
        ]
    )


def start_targets(
    stack: contextlib.ExitStack, nginx: str, work: Path
) -> tuple[list[Target], Lowart]:
    """The targets in table order; add peers here."""
    upstream = start_nginx(stack, nginx, work)
    passthrough = start_passthrough(stack, work)
    gateway, gw = start_lowart(stack, work)
    return [upstream, passthrough, gateway], gw


def main() -> int:
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    wrk, nginx = ensure_tools()
    work = OUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        targets, gw = start_targets(stack, nginx, work)
        for target in targets:
            verify(target)
        gw.requests_sent = len(MODES)
        results = []
        for target in targets:
            for result, sent in measure(wrk, target, seconds):
                results.append(result)
                if target.name == "lowart":
                    gw.requests_sent += sent
        text = report(results, gw, seconds)
    print()
    print(text)
    (OUT / "latest.md").write_text(text)
    log(f"written to {(OUT / 'latest.md').relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
