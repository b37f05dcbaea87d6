"""How a model with several deployments orders them for one request: pure functions of what
the router saw of each deployment and a random source (docs/api.md, "Deployments").

Each returns every candidate's index, best first: the first is the pick, the next ones are
where a retry goes. The router leaves out the deployments that may not be tried (disabled,
cooling after a 429); the dispatcher skips those whose circuit is open or whose cap is full.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from lowart.model_entry import Strategy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a strategy sees of one deployment."""

    index: int  # its place among the model's deployments (the model's own is 0)
    name: str  # its id, for sticky hashing
    weight: float
    in_flight: int = 0  # on this instance
    latency: float | None = None  # mean time to first byte in the window; None: not measured


def _weighted_key(weight: float, draw: float) -> float:
    """Efraimidis-Spirakis: the largest ``draw ** (1 / weight)`` first gives each weight its
    share of first picks; a weight of 0 goes last."""
    return draw ** (1.0 / weight) if weight > 0 else -1.0


def weighted(candidates: Sequence[Candidate], rng: random.Random) -> list[int]:
    """Random by weight (equal weights: an even share), without repeats."""
    keyed = [(_weighted_key(c.weight, rng.random()), c.index) for c in candidates]
    keyed.sort(reverse=True)
    return [index for _, index in keyed]


def weighted_first(cumulative: Sequence[float], draw: float) -> int:
    """The hot path of ``weighted`` when no deployment is cooling: the first pick by weight
    from the running sums of the weights and one draw in [0, 1); the rest follow in the
    model's order (``rotated``). All weights 0: the first."""
    total = cumulative[-1]
    return bisect.bisect_right(cumulative, draw * total) if total > 0 else 0


def rotated(deployments: Sequence[T], first: int) -> Sequence[T]:
    """``first``, then the ones after it, then the ones before it."""
    return [*deployments[first:], *deployments[:first]]


def least_in_flight(candidates: Sequence[Candidate], rng: random.Random) -> list[int]:
    """Fewest requests in flight first; ties by the larger weight, then at random (so equal
    deployments share the load rather than the first one taking it all)."""
    keyed = [(c.in_flight, -c.weight, rng.random(), c.index) for c in candidates]
    keyed.sort()
    return [k[3] for k in keyed]


def latency(candidates: Sequence[Candidate], rng: random.Random, explore: float) -> list[int]:
    """Lowest recent time to first byte first; a deployment not measured in the window comes
    first (so it gets measured). With probability ``explore`` the order is ``weighted``, so a
    slow deployment that recovered is measured again and regains its traffic."""
    if rng.random() < explore:
        return weighted(candidates, rng)
    keyed = [(-1.0 if c.latency is None else c.latency, rng.random(), c.index) for c in candidates]
    keyed.sort()
    return [k[2] for k in keyed]


def priority(candidates: Sequence[Candidate]) -> list[int]:
    """The model's own deployment first, then the others by id: the first healthy one serves."""
    return sorted(c.index for c in candidates)


def order(
    strategy: Strategy, candidates: Sequence[Candidate], rng: random.Random, explore: float
) -> list[int]:
    """The candidates' indices in the order ``strategy`` tries them."""
    if strategy is Strategy.LEAST_IN_FLIGHT:
        return least_in_flight(candidates, rng)
    if strategy is Strategy.LATENCY:
        return latency(candidates, rng, explore)
    if strategy is Strategy.PRIORITY:
        return priority(candidates)
    return weighted(candidates, rng)


def _draw(session: str, name: str) -> float:
    digest = hashlib.blake2b(f"{session}\0{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / 2**64  # in (0, 1]


def sticky(session: str, candidates: Sequence[Candidate]) -> list[int]:
    """A session's order: weighted rendezvous hashing, so a session keeps its deployment
    while that one is a candidate, and when it leaves only its sessions move, each to its
    next-highest (the same one for every request of the session)."""
    keyed = [(_weighted_key(c.weight, _draw(session, c.name)), c.name, c.index) for c in candidates]
    keyed.sort(reverse=True)
    return [k[2] for k in keyed]
