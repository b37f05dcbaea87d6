"""Attributing profiler time to the stages of a request, by the code that spent it.

A function's own time (cProfile's ``tottime``) goes to the stage of its module (and, where a
module serves two stages, of its function). Time spent in code that belongs to no stage (the
standard library, builtins such as ``msgspec.json.decode`` or ``dict.get``) goes to its callers,
in proportion to the time each call edge accounts for, up the call graph until a caller with a
stage is found; what is still unclaimed is "server/other".
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Func = tuple[str, int, str]  # cProfile's key: file, first line, function name
# cProfile's value: calls, primitive calls, own time, cumulative time, callers
Entry = tuple[int, int, float, float, Mapping[Func, tuple[int, int, float, float]]]

PARSE = "parse"
AUTH = "auth"
ADMISSION = "admission"
UPSTREAM = "upstream"
RELAY = "relay"
USAGE = "usage"
METRICS = "metrics"
OTHER = "server/other"
STAGES = (PARSE, AUTH, ADMISSION, UPSTREAM, RELAY, USAGE, METRICS, OTHER)

# (path fragment, function names or None for all, stage): the first match wins.
RULES: tuple[tuple[str, frozenset[str] | None, str], ...] = (
    ("/lowart/api/shedding.py", None, ADMISSION),
    ("/lowart/api/relay.py", None, PARSE),
    ("/lowart/api/chat.py", None, PARSE),
    ("/lowart/api/asgi.py", frozenset({"read_body", "parse_object", "header"}), PARSE),
    ("/lowart/api/asgi.py", None, RELAY),
    ("/lowart/api/stream.py", None, RELAY),
    ("/lowart/api/responses.py", None, RELAY),
    ("/lowart/catalog/directory.py", frozenset({"principal"}), AUTH),
    ("/lowart/catalog/directory.py", None, ADMISSION),
    ("/lowart/security/", None, AUTH),
    ("/lowart/dispatch/flow.py", frozenset({"admit", "_reserve", "_fit", "release"}), ADMISSION),
    ("/lowart/dispatch/flow.py", frozenset({"_relay"}), RELAY),
    ("/lowart/dispatch/flow.py", frozenset({"_observe_upstream"}), METRICS),
    ("/lowart/dispatch/flow.py", None, UPSTREAM),
    ("/lowart/dispatch/attempt.py", frozenset({"requested_max_tokens"}), ADMISSION),
    ("/lowart/dispatch/attempt.py", None, UPSTREAM),
    ("/lowart/dispatch/retry.py", None, UPSTREAM),
    ("/lowart/dispatch/billing.py", None, USAGE),
    ("/lowart/limits/", None, ADMISSION),
    ("/lowart/usage/estimate.py", frozenset({"admission_estimate"}), ADMISSION),
    ("/lowart/usage/", None, USAGE),
    ("/lowart/storage/", None, USAGE),
    ("/lowart/catalog/circuit.py", None, UPSTREAM),
    ("/lowart/providers/", None, UPSTREAM),
    ("/lowart/formats/", None, RELAY),
    ("/lowart/telemetry/", None, METRICS),
    ("/prometheus_client/", None, METRICS),
    ("/aiohttp/", None, UPSTREAM),
    ("/yarl/", None, UPSTREAM),
    ("/multidict/", None, UPSTREAM),
    ("/aiohappyeyeballs/", None, UPSTREAM),
    ("/propcache/", None, UPSTREAM),
    ("/sqlalchemy/", None, USAGE),
    ("/aiosqlite/", None, USAGE),
    ("/lowart/", None, OTHER),
    ("/uvicorn/", None, OTHER),
    ("/httptools/", None, OTHER),
    ("/starlette/", None, OTHER),
    ("/structlog/", None, OTHER),
)


def code_lines(cls: type) -> set[int]:
    """The first lines of a class's methods (how cProfile names them)."""
    lines = set()
    for value in vars(cls).values():
        function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
        if inspect.isfunction(function):
            lines.add(function.__code__.co_firstlineno)
    return lines


def classifier(auth_lines: Iterable[int]) -> Callable[[Func], str | None]:
    """The stage of a profiled function, or None for code of no stage (to be inherited).

    ``auth_lines``: the methods of ``AuthMiddleware`` (its module also holds the edge
    middleware, which is "server/other")."""
    auth = frozenset(auth_lines)

    def stage(func: Func) -> str | None:
        path, line, name = func
        if path.endswith("/lowart/api/middleware.py"):
            in_auth = line in auth or name in {"presented_key", "principal_of"}
            return AUTH if in_auth else OTHER
        for fragment, names, found in RULES:
            if fragment in path and (names is None or name in names):
                return found
        return None

    return stage


class _Split:
    """How each function's own time splits over stages (memoised fractions summing to 1)."""

    def __init__(self, stats: Mapping[Func, Entry], stage_of: Callable[[Func], str | None]) -> None:
        self._stats = stats
        self._stage_of = stage_of
        self._memo: dict[Func, dict[str, float]] = {}

    def __call__(
        self, func: Func, depth: int = 0, seen: frozenset[Func] = frozenset()
    ) -> dict[str, float]:
        found = self._stage_of(func)
        if found is not None:
            return {found: 1.0}
        if func in self._memo:
            return self._memo[func]
        entry = self._stats.get(func)
        callers = {c: e for c, e in (entry[4] if entry else {}).items() if c not in seen}
        if depth > 12 or not callers:
            return {OTHER: 1.0}
        weights = {c: e[2] for c, e in callers.items()}  # the callee's own time per caller
        if sum(weights.values()) <= 0:
            weights = {c: float(e[0]) for c, e in callers.items()}
        total = sum(weights.values()) or 1.0
        out: dict[str, float] = defaultdict(float)
        for caller, weight in weights.items():
            for stage, part in self(caller, depth + 1, seen | {func}).items():
                out[stage] += part * weight / total
        self._memo[func] = dict(out)  # a cycle cut short here is an approximation, kept
        return self._memo[func]


def attribute(
    stats: Mapping[Func, Entry], stage_of: Callable[[Func], str | None]
) -> tuple[dict[str, float], dict[str, list[tuple[float, Func]]]]:
    """Seconds per stage, and each stage's functions by own time (largest first)."""
    split = _Split(stats, stage_of)
    totals: dict[str, float] = defaultdict(float)
    spent: dict[str, dict[Func, float]] = defaultdict(lambda: defaultdict(float))
    for func, entry in stats.items():
        own = entry[2]
        if own <= 0:
            continue
        for stage, part in split(func).items():
            totals[stage] += own * part
            spent[stage][func] += own * part
    ranked = {
        stage: sorted(((t, f) for f, t in funcs.items()), reverse=True)
        for stage, funcs in spent.items()
    }
    return {stage: totals.get(stage, 0.0) for stage in STAGES}, ranked


def describe(func: Func) -> str:
    """``package/module.py:line(name)``, short."""
    path, line, name = func
    if path == "~":
        return name
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})"


def as_entries(raw: Mapping[Any, Any]) -> dict[Func, Entry]:
    """cProfile's ``stats`` (after ``create_stats``) with its types stated."""

    def key(k: Any) -> Func:
        return (str(k[0]), int(k[1]), str(k[2]))

    out: dict[Func, Entry] = {}
    for k, (cc, nc, tt, ct, callers) in raw.items():
        edges = {
            key(c): (int(e[0]), int(e[1]), float(e[2]), float(e[3])) for c, e in callers.items()
        }
        out[key(k)] = (int(cc), int(nc), float(tt), float(ct), edges)
    return out
