"""Circuit breakers with an injected clock: exact transitions, no sleeping through cooldowns."""

from __future__ import annotations

from structlog.testing import capture_logs

from lowart.catalog.circuit import CLOSED, HALF_OPEN, OPEN, Breaker, CircuitConfig, Circuits

CONFIG = CircuitConfig(window_s=10, min_calls=4, failure_ratio=0.5, cooldown_s=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_at_the_failure_ratio_once_enough_calls() -> None:
    breaker = Breaker(CONFIG)
    for failed in (True, True, False):
        assert breaker.allow(0)
        breaker.report(0, failed=failed)
    assert breaker.state == CLOSED  # 3 calls < min_calls, although 2/3 failed
    breaker.report(0, failed=False)
    assert breaker.state == OPEN  # 2 failures of 4 reach the 0.5 ratio
    assert not breaker.allow(29.9)


def test_failures_outside_the_window_do_not_count() -> None:
    breaker = Breaker(CONFIG)
    breaker.report(0, failed=True)
    breaker.report(0, failed=True)
    for _ in range(3):
        breaker.report(11, failed=False)
    breaker.report(11, failed=True)
    assert breaker.state == CLOSED  # only 1 of the 4 calls in the window failed


def test_half_open_probe_closes_or_reopens() -> None:
    clock = Clock()
    circuits = Circuits(CONFIG, clock)
    for _ in range(4):
        assert circuits.allow("m")
        circuits.report("m", failed=True)
    assert circuits.state("m") == OPEN and not circuits.allow("m")
    clock.now += 30
    assert circuits.allow("m") and circuits.state("m") == HALF_OPEN
    assert not circuits.allow("m")  # one probe at a time
    circuits.report("m", failed=True)
    assert circuits.state("m") == OPEN and not circuits.allow("m")
    clock.now += 30
    assert circuits.allow("m")
    circuits.report("m", failed=False)
    assert circuits.state("m") == CLOSED and circuits.allow("m")


def test_an_abandoned_probe_frees_the_half_open_slot() -> None:
    clock = Clock()
    circuits = Circuits(CONFIG, clock)
    for _ in range(4):
        circuits.report("m", failed=True)
    clock.now += 30
    assert circuits.allow("m")
    circuits.abandon("m")
    assert circuits.allow("m")


def test_breakers_are_per_model() -> None:
    circuits = Circuits(CONFIG, Clock())
    for _ in range(4):
        circuits.report("a", failed=True)
    assert not circuits.allow("a")
    assert circuits.allow("b")


def test_successes_in_a_closed_circuit_never_open_it() -> None:
    breaker = Breaker(CONFIG)
    for t in range(100):
        breaker.report(t / 10, failed=False)
    assert breaker.state == CLOSED


def test_every_state_change_is_logged_once() -> None:
    clock = Clock()
    circuits = Circuits(CONFIG, clock)
    with capture_logs() as logs:
        for _ in range(4):  # four failures open it
            assert circuits.allow("m")
            circuits.report("m", failed=True)
        assert not circuits.allow("m")  # skipped while open: no new line
        clock.now += 30
        assert circuits.allow("m")  # the half-open probe
        circuits.report("m", failed=False)
        circuits.report("m", failed=False)  # closed already: no new line
    changes = [
        (e["log_level"], e["model_id"], e["previous"], e["state"])
        for e in logs
        if e["event"] == "circuit_state_changed"
    ]
    assert changes == [
        ("warning", "m", CLOSED, OPEN),
        ("info", "m", OPEN, HALF_OPEN),
        ("info", "m", HALF_OPEN, CLOSED),
    ]
