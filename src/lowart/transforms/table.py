"""Which script runs for which model: the in-memory table of the enabled ``transforms`` rows,
rebuilt from each storage snapshot with the directory (``CACHE_REFRESH_S``, and at once after an
admin write, on every instance through the invalidation channel).

A model's own script wins; the global one (``model_id`` NULL) serves every model without one.
Rows with a ``deployment`` are kept in the table but not run: deployments do not exist yet
(docs/transforms.md, "Attaching a script").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from lowart.storage.rows import TransformRow

log = structlog.get_logger()

REQUEST, RESPONSE, CHUNK = "on_request", "on_response", "on_chunk"


@dataclass(frozen=True, slots=True)
class Script:
    """An enabled script as it runs: ``key`` names its source's version in the workers."""

    id: int
    model_id: str | None
    key: str
    source: str
    entries: frozenset[str]  # the entry points it runs for
    skip_on_error: bool

    def runs(self, entry: str) -> bool:
        return entry in self.entries


def source_key(transform_id: int, source: str) -> str:
    """The name of one version of a script: its id and its source's digest."""
    return f"{transform_id}:{hashlib.sha256(source.encode()).hexdigest()[:24]}"


def entries_of(row: TransformRow) -> frozenset[str]:
    flags = {REQUEST: row.on_request, RESPONSE: row.on_response, CHUNK: row.on_chunk}
    return frozenset(name for name, on in flags.items() if on)


def script_of(row: TransformRow) -> Script:
    return Script(
        id=row.id,
        model_id=row.model_id,
        key=source_key(row.id, row.source),
        source=row.source,
        entries=entries_of(row),
        skip_on_error=row.on_error == "skip",
    )


class TransformTable:
    """The scripts by model id, and the global one; ``present`` is told when any exists."""

    def __init__(self, present: Callable[[], None]) -> None:
        self._by_model: dict[str, Script] = {}
        self._global: Script | None = None
        self._present = present

    def apply(self, rows: Iterable[TransformRow]) -> None:
        by_model: dict[str, Script] = {}
        found: Script | None = None
        for row in rows:  # in id order: the first enabled row of a model wins
            if not row.enabled or row.deployment is not None or not entries_of(row):
                continue
            if row.model_id is None:
                found = found or script_of(row)
            elif row.model_id not in by_model:
                by_model[row.model_id] = script_of(row)
            else:
                log.warning("transform_shadowed", transform_id=row.id, model_id=row.model_id)
        self._by_model, self._global = by_model, found
        if by_model or found is not None:
            self._present()

    def for_model(self, model_id: str) -> Script | None:
        """The script for ``model_id``: one dict lookup (a model without one pays no more)."""
        return self._by_model.get(model_id, self._global)
