"""Where a request's time goes: the gateway in this process under cProfile, loaded by wrk
through the nginx fake upstream, its profile split into stages (:mod:`stages`).

The gateway is built the way the tests build it (``create_app(settings)``) and served by uvicorn
on this process's event loop (uvloop), so the profiler sees every request; wrk runs as another
process. Each mode (non-streaming, streaming) gets a warm-up, an unprofiled run (its requests/s
are the real cost per request) and a profiled run (the split). The profiler slows Python code
several-fold, so read the stage figures as shares of one request's CPU, not as latencies.

Settings: ``BENCH_PROFILE_SECONDS`` (default 5) per run, ``BENCH_PROFILE_CONNECTIONS``
(default 16). The table is printed and written to ``bench/out/profile.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import datetime as dt
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import machine
import stages
import tools
from procs import BENCH, OUT, log
from targets import MODE_LABEL, MODES, Target, Upstream, start_nginx
from wrk import Run, parse

SECONDS = int(os.environ.get("BENCH_PROFILE_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_PROFILE_CONNECTIONS", "16"))
ADMIN_KEY = "bench-profile-admin-" + secrets.token_hex(8)
TOP = 12
POST_LUA = str(BENCH / "post.lua")


@dataclass(frozen=True)
class Profiled:
    """One mode: the unprofiled run, the profiled run, and seconds per stage."""

    mode: str
    plain: Run
    profiled: Run
    seconds: dict[str, float]
    top: list[tuple[float, str, str]]  # own seconds, stage, function


async def _wrk(target: Target, mode: str, seconds: int) -> Run:
    headers = target.headers_for(mode)
    env = {
        **os.environ,
        "BENCH_BODY": target.body(mode),
        "BENCH_AUTH": headers.pop("Authorization", ""),
        "BENCH_HEADERS": "",
    }
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", POST_LUA]
    proc = await asyncio.create_subprocess_exec(
        *argv, target.urls[mode], env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return parse(out.decode())


async def _setup(base: str, upstream: Upstream) -> Target:
    """A user with limits on and a model per mode, through the admin API."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession(headers=admin) as client:
        quota = {"user_id": "profile", "rpm_limit": 100_000_000, "token_quota": 10**15}
        async with client.post(base + "/admin/users/quota", json=quota) as response:
            key = (await response.json())["api_key"]
        for mode in MODES:
            model = {
                "model_id": f"bench-{mode}",
                "vendor_type": "OpenAI",
                "base_url": upstream.v1(mode),
                "api_key": "sk-bench",
                "upstream_model": "gpt-4o",
            }
            async with client.post(base + "/admin/models", json=model) as response:
                response.raise_for_status()
    return Target(
        name="lowart",
        urls=dict.fromkeys(MODES, base + "/v1/chat/completions"),
        models={mode: f"bench-{mode}" for mode in MODES},
        headers={mode: {"Authorization": f"Bearer {key}"} for mode in MODES},
    )


async def _profile(upstream: Upstream, home: Path) -> list[Profiled]:
    # Imported here: the gateway's modules are what is measured, not what the bench needs.
    from lowart.api.middleware import AuthMiddleware  # noqa: PLC0415
    from lowart.app import create_app  # noqa: PLC0415
    from lowart.serve import tune_gc  # noqa: PLC0415
    from lowart.settings import Settings  # noqa: PLC0415
    from lowart.telemetry.logging import configure_logging  # noqa: PLC0415
    from lowart.testing.server import serve_fake  # noqa: PLC0415

    configure_logging("warning", "console")
    settings = Settings().replace(
        database_url=f"sqlite:///{home}/lowart.db",
        admin_key=ADMIN_KEY,
        master_key=secrets.token_hex(32),
        lowart_workdir=home,
        port=0,
        log_level="warning",
    )
    server = await serve_fake(create_app(settings))
    try:
        tune_gc()
        target = await _setup(server.base_url, upstream)
        classify = stages.classifier(stages.code_lines(AuthMiddleware))
        results = []
        for mode in MODES:
            await _wrk(target, mode, 2)
            plain = await _wrk(target, mode, SECONDS)
            profiler = cProfile.Profile()
            profiler.enable()
            profiled = await _wrk(target, mode, SECONDS)
            profiler.disable()
            profiler.create_stats()
            entries = stages.as_entries(profiler.stats)
            seconds, ranked = stages.attribute(entries, classify)
            top = sorted(
                (
                    (own, stage, stages.describe(func))
                    for stage, funcs in ranked.items()
                    for own, func in funcs
                ),
                reverse=True,
            )[:TOP]
            log(
                f"{MODE_LABEL[mode]}: {plain.rps:,.0f} req/s unprofiled, "
                f"{profiled.rps:,.0f} req/s profiled ({profiled.requests:,} requests)"
            )
            results.append(Profiled(mode, plain, profiled, seconds, top))
        return results
    finally:
        await server.stop()


def table(results: list[Profiled]) -> list[str]:
    head = "| stage |" + "".join(f" {MODE_LABEL[r.mode]} us/request | share |" for r in results)
    lines = [head, "| --- |" + " ---: | ---: |" * len(results)]
    for stage in stages.STAGES:
        cells = ""
        for r in results:
            total = sum(r.seconds.values())
            us = r.seconds[stage] / max(1, r.profiled.requests) * 1e6
            cells += f" {us:,.1f} | {r.seconds[stage] / total * 100 if total else 0:.1f} % |"
        lines.append(f"| {stage} |{cells}")
    totals = ""
    for r in results:
        totals += f" **{sum(r.seconds.values()) / max(1, r.profiled.requests) * 1e6:,.1f}** |"
        totals += " 100 % |"
    lines.append(f"| **total (profiled)** |{totals}")
    plain = "".join(f" {1e6 / r.plain.rps:,.1f} (at {r.plain.rps:,.0f} req/s) | |" for r in results)
    lines.append(f"| wall time per request, unprofiled |{plain}")
    return lines


def report(results: list[Profiled], started: dt.datetime) -> str:
    lines = [
        "# Where a request's time goes (cProfile, by stage)",
        "",
        f"- Date: {started.isoformat(timespec='seconds')} (UTC); CPU: {machine.cpu_model()}, "
        f"{os.cpu_count()} cores; load average at the end: {machine.load_average()}",
        f"- Command: `.venv/bin/python bench/profile.py`; per mode: a 2 s warm-up, a "
        f"{SECONDS} s unprofiled run and a {SECONDS} s profiled run, "
        f"`wrk -t1 -c{CONNECTIONS}` through the gateway (in this process, uvicorn on uvloop) "
        "to the nginx fake upstream",
        "- Microseconds of the gateway process's CPU per request under the profiler, which "
        "inflates Python code several-fold: compare the shares, and the unprofiled wall "
        "time per request (one event loop, so about its CPU per request) for scale.",
        "- Stages: parse (body read, JSON, validation: api/relay.py, api/chat.py, "
        "api/asgi.py), auth (AuthMiddleware, key lookup), admission (dispatch/flow.py admit, "
        "limits/, shedding), upstream (providers/, dispatch chain, aiohttp), relay "
        "(api/stream.py, responses, formats/), usage (usage/, dispatch/billing.py, storage), "
        "metrics (telemetry/, prometheus_client), server/other (uvicorn, the edge middleware, "
        "the event loop, logging). Standard-library and builtin time goes to its caller. "
        "Only the event loop's thread is profiled: work handed to other threads (aiosqlite's "
        "connection thread, the tokenizer) shows only as the hand-off.",
        "",
        *table(results),
        "",
    ]
    for r in results:
        lines += [
            f"Top functions by own time, {MODE_LABEL[r.mode]} (us/request, stage):",
            "",
            *(
                f"- {own / max(1, r.profiled.requests) * 1e6:,.1f} us {stage}: `{name}`"
                for own, stage, name in r.top
            ),
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    started = dt.datetime.now(dt.UTC)
    _, nginx = tools.ensure()
    scratch = Path(tempfile.mkdtemp(prefix="lowart-profile-"))
    try:
        with contextlib.ExitStack() as stack:
            upstream = start_nginx(stack, nginx, scratch / "nginx")
            home = scratch / "lowart"
            home.mkdir()
            import uvloop  # noqa: PLC0415 (as the gateway serves)

            results = uvloop.run(_profile(upstream, home))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = report(results, started)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "profile.md").write_text(text)
    log(f"written to {OUT / 'profile.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
