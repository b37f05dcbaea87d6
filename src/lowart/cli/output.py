"""What a command prints: an aligned table (or a field list) for people, JSON with ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

Record = Mapping[str, Any]


def cell(value: object) -> str:
    """One value as a table shows it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell(item) for item in value) or "-"
    if isinstance(value, dict):
        return msgspec.json.encode(value).decode()
    return str(value)


def table(rows: Sequence[Record], columns: Sequence[str]) -> str:
    """Rows under upper-case headers, each column as wide as its widest value."""
    lines = [[name.upper() for name in columns]]
    lines += [[cell(row.get(name)) for name in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def fields(record: Record) -> str:
    """One record as ``name  value`` lines."""
    width = max((len(name) for name in record), default=0)
    return "".join(f"{name.ljust(width)}  {cell(value)}\n" for name, value in record.items())


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def as_json(value: object) -> str:
    return msgspec.json.encode(value).decode() + "\n"


def emit_rows(rows: Sequence[Record], columns: Sequence[str], json: bool) -> None:
    """A list: a JSON array with ``--json``, else a table of ``columns``."""
    write(as_json(list(rows)) if json else table(rows, columns))


def emit_record(record: Record, json: bool) -> None:
    """One object: JSON with ``--json``, else its fields one a line."""
    write(as_json(record) if json else fields(record))
