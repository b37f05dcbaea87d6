"""The transform workers (real processes): results, the script's ``fail()``, errors with their
line and column, and hostile scripts, each ending within the time limit or with its worker's
death, the worker replaced and the next call served (docs/transforms.md, "Limits")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from lowart.errors import TransformFailed
from lowart.transforms.pool import PoolConfig, WorkerPool
from lowart.transforms.protocol import Call

TIMEOUT_MS = 50

SCRIPT = """
SEEN = {}

def on_request(req, ctx):
    if req.get("refuse"):
        fail("refused: " + req["refuse"])
    req["who"] = ctx["user_id"]
    return req

def stash(req, ctx):
    SEEN[ctx["user_id"]] = req
    return req

def loops(req, ctx):
    n = 0
    for i in range(1000000000):
        for j in range(1000000000):
            n += 1
    return {"n": n}

def deep(req, ctx):
    return deep(req, ctx)

def huge(req, ctx):
    return {"n": len([1] * 1000000000 * 10)}

def builtin(req, ctx):
    return {"n": len(sorted(list(range(req["n"])), reverse=True))}

def walk(req, ctx):
    return {"c": on_request.__globals__}
"""


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    workers = WorkerPool(PoolConfig(size=2, timeout_ms=TIMEOUT_MS, memory_mb=256, kill_after_s=2.0))
    workers.start()
    yield workers
    await workers.close()


def call(entry: str, body: object, source: str = SCRIPT) -> Call:
    return Call("k1", source, entry, [body, {"user_id": "u1"}], TIMEOUT_MS)


async def test_a_call_returns_the_script_value_and_fail_is_a_rejection(pool: WorkerPool) -> None:
    reply = await pool.run(call("on_request", {"model": "m", "n": 1.5, "x": None}))
    assert (reply.status, reply.value) == ("ok", {"model": "m", "n": 1.5, "x": None, "who": "u1"})
    refused = await pool.run(call("on_request", {"refuse": "too long"}))
    assert (refused.status, refused.message) == ("rejected", "refused: too long")


async def test_module_globals_are_frozen_between_calls(pool: WorkerPool) -> None:
    reply = await pool.run(call("stash", {"secret": "a"}))
    assert reply.status == "error"
    assert "immutable" in reply.message.lower()


async def test_load_errors_carry_line_and_column(pool: WorkerPool) -> None:
    bad = await pool.run(Call("k2", "def on_request(r c):\n  return r\n", "", [], 50))
    assert bad.status == "error" and "transform.star:1:18" in bad.message
    missing = Call("k3", "def on_request(r, c):\n  return r\n", "", [], 50, ["on_response"])
    reply = await pool.run(missing)
    assert reply.status == "error" and "on_response" in reply.message
    for source, needle in [
        ('load("other.star", "x")\n', "other.star"),
        ("import os\n", "import"),
        ("while True:\n  pass\n", "while"),
        ('X = open("/etc/passwd")\n', "open"),
        ('X = "".__class__\n', "__class__"),
    ]:
        reply = await pool.run(Call("k-" + needle, source, "", [], 50))
        assert reply.status == "error" and needle in reply.message, (source, reply)


@pytest.mark.parametrize(
    ("entry", "status"),
    [("loops", "timeout"), ("deep", "error"), ("walk", "error")],
)
async def test_hostile_calls_end_within_the_limit(
    pool: WorkerPool, entry: str, status: str
) -> None:
    started = time.monotonic()
    reply = await pool.run(call(entry, {}))
    assert reply.status == status, reply
    assert time.monotonic() - started < 1.0  # 50 ms of script, IPC and a loaded machine
    assert (await pool.run(call("on_request", {}))).value == {"who": "u1"}


async def test_a_script_past_its_memory_kills_only_its_worker(pool: WorkerPool) -> None:
    with pytest.raises(TransformFailed):
        await pool.run(Call("k1", SCRIPT, "huge", [{}, {}], TIMEOUT_MS))
    assert pool.replaced == 1
    for _ in range(4):  # the replacement serves, as does the other worker
        assert (await pool.run(call("on_request", {}))).status == "ok"


async def test_top_level_code_is_bounded_too(pool: WorkerPool) -> None:
    source = "N = [i for i in range(1000000000)]\n"
    started = time.monotonic()
    try:
        reply = await pool.run(Call("k4", source, "", [], TIMEOUT_MS))
        assert reply.status in {"timeout", "error"}
    except TransformFailed:  # on a busy machine the list can pass 256 MB first: the worker dies
        assert pool.replaced == 1
    assert time.monotonic() - started < 2.0


async def test_a_builtin_past_the_limit_is_refused_or_killed(pool: WorkerPool) -> None:
    late = await pool.run(call("builtin", {"n": 5_000_000}))  # ~0.25 s in one uncancellable sort
    assert (late.status, late.value) == ("timeout", None)
    config = PoolConfig(size=1, timeout_ms=TIMEOUT_MS, memory_mb=512, kill_after_s=0.05)
    stuck = WorkerPool(config)
    try:
        with pytest.raises(TransformFailed):
            await stuck.run(call("builtin", {"n": 12_000_000}))  # past timeout + kill_after
        assert stuck.replaced == 1
        assert (await stuck.run(call("on_request", {}))).status == "ok"
    finally:
        await stuck.close()


async def test_workers_that_cannot_start_fail_calls_at_once() -> None:
    # 1 MiB of address space: the worker cannot even build its interpreter.
    broken = WorkerPool(PoolConfig(size=2, timeout_ms=TIMEOUT_MS, memory_mb=1, kill_after_s=1.0))
    try:
        started = time.monotonic()
        with pytest.raises(TransformFailed):
            await broken.run(call("on_request", {}))
        with pytest.raises(TransformFailed):  # no new start within start_timeout_s: at once
            await broken.run(call("on_request", {}))
        assert time.monotonic() - started < broken.config.start_timeout_s
    finally:
        await broken.close()
