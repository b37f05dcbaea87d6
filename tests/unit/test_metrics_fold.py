"""Deferred metric updates expose exactly what direct prometheus_client updates do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from lowart.telemetry.metrics import Metrics

# Bucket bounds themselves (a value equal to a bound is in that bucket), and beyond the last.
SECONDS = st.one_of(
    st.sampled_from([0.0, 0.001, 0.0025, 0.1, 600.0, 600.0001, 1e6]),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
)
LABELS = st.sampled_from(["a", "b"])


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if not sample.name.endswith("_created")  # creation times differ between registries
    }


@settings(deadline=None)  # rendering two registries is slow on a loaded machine, not wrong
@given(
    st.lists(st.tuples(LABELS, SECONDS), max_size=30),
    st.lists(st.tuples(LABELS, st.integers(0, 10**6)), max_size=30),
)
def test_deferred_updates_render_as_direct_ones(
    timings: list[tuple[str, float]], counts: list[tuple[str, int]]
) -> None:
    deferred, direct = Metrics(), Metrics()
    for label, seconds in timings:
        deferred.time(deferred.upstream_duration, seconds, label, "default")
        direct.upstream_duration.labels(label, "default").observe(seconds)
    for label, amount in counts:
        deferred.add(deferred.tokens, label, "b", "prompt", amount=amount)
        direct.tokens.labels(label, "b", "prompt").inc(amount)
    assert _samples(deferred) == _samples(direct)
    deferred.time(
        deferred.upstream_duration, 0.5, "a", "default"
    )  # folding twice adds, never repeats
    direct.upstream_duration.labels("a", "default").observe(0.5)
    assert _samples(deferred) == _samples(direct)
