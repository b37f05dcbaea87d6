"""The routing strategies, pure functions of their inputs and a seeded random source, and the
router over a model's deployments with injected clocks (docs/api.md, "Deployments")."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest

from lowart.dispatch.health import DeploymentHealth, HealthConfig
from lowart.dispatch.routing import Router, session_of
from lowart.dispatch.strategies import (
    Candidate,
    latency,
    least_in_flight,
    priority,
    rotated,
    sticky,
    weighted,
    weighted_first,
)
from lowart.limits.memory import MemoryRateLimiter, MemoryTokenWindow
from lowart.model_entry import ModelEntry, Routing, Strategy, timeouts_of

PICKS = 10_000


def firsts(pick: object, candidates: Sequence[Candidate], seed: int = 7) -> Counter[int]:
    rng = random.Random(seed)
    return Counter(pick(candidates, rng)[0] for _ in range(PICKS))  # type: ignore[operator]


def test_weighted_3_to_1_gives_75_25_within_2_percent() -> None:
    shares = firsts(weighted, [Candidate(0, "a", 3.0), Candidate(1, "b", 1.0)])
    assert abs(shares[0] / PICKS - 0.75) <= 0.02
    assert abs(shares[1] / PICKS - 0.25) <= 0.02


def test_the_weighted_hot_path_gives_75_25_and_even_shares_within_2_percent() -> None:
    """What a request uses when nothing is cooling: one draw over the running sums."""
    rng = random.Random(13)
    shares = Counter(weighted_first((3.0, 4.0), rng.random()) for _ in range(PICKS))
    assert abs(shares[0] / PICKS - 0.75) <= 0.02 and abs(shares[1] / PICKS - 0.25) <= 0.02
    even = Counter(weighted_first((1.0, 2.0, 3.0, 4.0), rng.random()) for _ in range(PICKS))
    assert all(abs(even[i] / PICKS - 0.25) <= 0.02 for i in range(4))
    assert weighted_first((0.0, 0.0), 0.5) == 0  # all weights 0: the first
    assert Counter(weighted_first((0.0, 1.0, 1.0), rng.random()) for _ in range(500))[0] == 0
    assert rotated("abcd", 2) == ["c", "d", "a", "b"]


def test_equal_weights_give_an_even_share_within_2_percent() -> None:
    candidates = [Candidate(i, f"d{i}", 1.0) for i in range(4)]
    shares = firsts(weighted, candidates, seed=11)
    for index in range(4):
        assert abs(shares[index] / PICKS - 0.25) <= 0.02


def test_weighted_orders_every_candidate_once_and_weight_zero_last() -> None:
    rng = random.Random(3)
    candidates = [Candidate(0, "a", 0.0), Candidate(1, "b", 1.0), Candidate(2, "c", 5.0)]
    for _ in range(200):
        got = weighted(candidates, rng)
        assert sorted(got) == [0, 1, 2] and got[-1] == 0


def test_least_in_flight_picks_the_idlest_ties_by_weight_then_at_random() -> None:
    rng = random.Random(5)
    busy = [Candidate(0, "a", 1.0, in_flight=3), Candidate(1, "b", 1.0, in_flight=1)]
    assert least_in_flight(busy, rng) == [1, 0]
    by_weight = [Candidate(0, "a", 1.0, in_flight=2), Candidate(1, "b", 2.0, in_flight=2)]
    assert least_in_flight(by_weight, rng)[0] == 1
    even = [Candidate(0, "a", 1.0), Candidate(1, "b", 1.0)]
    shares = Counter(least_in_flight(even, rng)[0] for _ in range(2000))
    assert min(shares.values()) > 800  # not always the first one


def test_least_in_flight_closed_loop_slow_never_holds_more_than_fast_plus_one() -> None:
    """Closed-loop clients (each sends its next request when its last one ends) against a slow
    (1 s) and a fast (10 ms) deployment, on a simulated clock: at every pick, the slow one has
    at most one request more in flight than the fast one."""
    rng, service = random.Random(1), (1.0, 0.01)
    in_flight, ends = [0, 0], [(0.0, c, None) for c in range(6)]  # (time, client, deployment)
    for _ in range(5000):
        ends.sort()
        now, client, done = ends.pop(0)
        if done is not None:
            in_flight[done] -= 1
        candidates = [Candidate(i, str(i), 1.0, in_flight[i]) for i in (0, 1)]
        chosen = least_in_flight(candidates, rng)[0]
        in_flight[chosen] += 1
        assert in_flight[0] <= in_flight[1] + 1
        ends.append((now + service[chosen], client, chosen))


def test_latency_prefers_the_fastest_and_measures_the_unmeasured_first() -> None:
    rng = random.Random(2)
    known = [Candidate(0, "a", 1.0, latency=0.5), Candidate(1, "b", 1.0, latency=0.1)]
    assert latency(known, rng, explore=0.0) == [1, 0]
    fresh = [Candidate(0, "a", 1.0, latency=0.1), Candidate(1, "b", 1.0, latency=None)]
    assert latency(fresh, rng, explore=0.0)[0] == 1


def test_priority_is_the_deployments_order() -> None:
    candidates = [Candidate(2, "c", 9.0), Candidate(0, "a", 1.0), Candidate(1, "b", 1.0)]
    assert priority(candidates) == [0, 1, 2]


def test_sticky_keeps_a_session_and_moves_only_the_leavers_sessions() -> None:
    three = [Candidate(i, name, 1.0) for i, name in enumerate("abc")]
    homes = {f"s{n}": sticky(f"s{n}", three)[0] for n in range(300)}
    assert all(sticky(s, three)[0] == home for s, home in homes.items())
    assert set(homes.values()) == {0, 1, 2}
    without_b = [c for c in three if c.name != "b"]
    for session, home in homes.items():
        moved = sticky(session, without_b)[0]
        assert moved == home if home != 1 else moved == sticky(session, three)[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(strategy: Strategy, *names: str, sticky_: bool = False) -> ModelEntry:
    base = ModelEntry(
        model_id="m",
        vendor="openai",
        base_url="http://u",
        api_key=None,
        upstream_model="up",
        params={},
        timeouts=timeouts_of({}, 60),
        enabled=True,
    )
    deployments = tuple(
        replace(base, deployment=name, health_key=f"m/{name}") if name != "default" else base
        for name in names
    )
    return replace(base, routing=Routing(strategy, sticky_, deployments))


def router(clock: Clock, explore: float = 0.05, seed: int = 9) -> Router:
    health = DeploymentHealth(HealthConfig(latency_window_s=10.0, cooling_s=5.0), clock)
    return Router(
        health,
        MemoryRateLimiter(60.0, clock),
        MemoryTokenWindow(60.0, clock),
        explore=explore,
        rng=random.Random(seed),
    )


def test_the_router_orders_a_weighted_model_by_one_draw_then_in_turn() -> None:
    clock = Clock()
    model = pool(Strategy.WEIGHTED, "default", "b", "c")
    r = router(clock)
    orders = Counter(tuple(d.deployment for d in r.order(model, None)) for _ in range(3000))
    assert set(orders) == {("default", "b", "c"), ("b", "c", "default"), ("c", "default", "b")}
    assert all(900 < n < 1100 for n in orders.values())


def share(r: Router, model: ModelEntry, name: str, n: int = 400) -> float:
    return sum(r.order(model, None)[0].deployment == name for _ in range(n)) / n


def test_latency_a_slow_deployment_loses_its_traffic_and_regains_it_after_recovery() -> None:
    clock, model = Clock(), pool(Strategy.LATENCY, "default", "b")
    r = router(clock)
    for name in ("m", "m/b"):
        r.health.observe(name, 0.10)
    assert 0.3 < share(r, model, "b") < 0.7  # equal: either
    r.health.observe("m/b", 2.0)  # b turns slow
    assert share(r, model, "b") < 0.06  # only exploration reaches it
    clock.now += 11  # the window passes: nothing measured, b is tried to be measured
    r.health.observe("m", 0.10)
    r.health.observe("m/b", 0.05)  # recovered, measured by an exploring request
    assert share(r, model, "b") > 0.9


def test_a_429_cools_a_deployment_for_its_retry_after() -> None:
    clock, model = Clock(), pool(Strategy.WEIGHTED, "default", "b")
    r = router(clock)
    r.health.cool("m/b", 30.0)
    for _ in range(50):
        assert [d.deployment for d in r.order(model, None)] == ["default"]
    clock.now += 29.9
    assert r.health.cooling("m/b")
    clock.now += 0.1
    assert not r.health.cooling("m/b")
    assert {r.order(model, None)[0].deployment for _ in range(50)} == {"default", "b"}
    r.health.cool("m", None)  # no Retry-After: ROUTING_COOLING_S
    clock.now += 4.9
    assert [d.deployment for d in r.order(model, None)] == ["b"]


def test_sticky_and_preferred_deployments_come_first() -> None:
    clock = Clock()
    model = pool(Strategy.WEIGHTED, "default", "b", "c", sticky_=True)
    r = router(clock)
    orders = {tuple(d.deployment for d in r.order(model, "session:x")) for _ in range(20)}
    assert len(orders) == 1
    assert r.order(model, "session:x", preferred="c")[0].deployment == "c"
    assert r.order(model, "session:x", preferred="gone")[0].deployment == orders.pop()[0]


def test_the_session_is_the_header_else_the_user() -> None:
    assert session_of([(b"x-session-id", b"abc")], "u1") == "session:abc"
    assert session_of([(b"other", b"1")], "u1") == "user:u1"


@pytest.mark.parametrize("cap", ["rpm", "tpm"])
async def test_caps_refuse_a_full_deployment_until_the_window_passes(cap: str) -> None:
    clock = Clock()
    r = router(clock)
    model = pool(Strategy.WEIGHTED, "default", "b")
    assert model.routing is not None
    b = replace(model.routing.deployments[1], **{f"{cap}_cap": 3})
    for _ in range(3):
        assert await r.within_caps(b)
        await r.spent(b, 1)
    assert not await r.within_caps(b)
    clock.now += 60
    assert await r.within_caps(b)


def test_the_latency_window_is_a_running_mean_that_forgets_old_samples() -> None:
    clock = Clock()
    health = DeploymentHealth(HealthConfig(latency_window_s=10.0), clock)
    assert health.latency("k") is None
    health.observe("k", 0.1)
    clock.now += 6
    health.observe("k", 0.3)
    assert health.latency("k") == pytest.approx(0.2)
    clock.now += 5  # the first sample leaves the window
    assert health.latency("k") == pytest.approx(0.3)
    clock.now += 6
    assert health.latency("k") is None
    assert health.report("k")["served"] == 2 and health.report("k")["latency_ms"] is None
