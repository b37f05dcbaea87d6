"""Redaction of logged bodies (docs/operations.md, "Request logs"): pure functions from a body to
the text that may be written.

Applied in this order, before anything reaches the database: values under secret-named keys
(``authorization``, ``api_key``, ``password``, …) and under the configured JSON paths become
``***``; an embedding becomes its shape (``"<1536 floats>"``); every match of the configured
pattern in a string (e-mail addresses, bearer tokens and key-shaped strings by default) becomes
``***``; the encoded body is cut to the size cap, with a marker saying how much there was.

The work is bounded by the cap, not by the body: once the strings walked add up to the cap,
the rest (which the cap would cut anyway) is dropped unread. Each string is redacted with
``SLACK`` characters past its cut, so that a secret straddling the cut is still recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

MASK = "***"
SLACK = 256  # characters of context past a cut: longer than any key a pattern looks for
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api_key",
        "api-key",
        "apikey",
        "x-api-key",
        "password",
        "secret",
        "client_secret",
        "access_token",
        "refresh_token",
        "cookie",
        "set-cookie",
    }
)
EMBEDDING = "embedding"


def truncation_marker(size: int, kept: int) -> str:
    """The text that ends a cut body."""
    return f"…[truncated by Lowart: {size} bytes, the first {kept} kept]"


@dataclass(frozen=True)
class Redaction:
    """The rules: JSON paths (``*`` matches any key or list index), one pattern, the cap."""

    paths: tuple[tuple[str, ...], ...]
    pattern: re.Pattern[str] | None
    max_bytes: int

    @classmethod
    def parse(cls, paths: str, pattern: str, max_bytes: int) -> Redaction:
        """From the settings' text: paths comma separated, each dotted."""
        parsed = tuple(
            tuple(part.strip() for part in path.strip().removeprefix("$.").split("."))
            for path in paths.split(",")
            if path.strip()
        )
        return cls(parsed, re.compile(pattern) if pattern else None, max_bytes)

    def under_path(self, path: tuple[str, ...]) -> bool:
        return any(
            len(rule) == len(path) and all(r in ("*", p) for r, p in zip(rule, path, strict=True))
            for rule in self.paths
        )


class _Walk:
    """One body's redaction, with its budget of characters still to read."""

    def __init__(self, rules: Redaction) -> None:
        self.rules = rules
        self.budget = rules.max_bytes + SLACK

    def text(self, value: str) -> str:
        if self.budget <= 0:
            return ""
        cut = value[: self.budget + SLACK]
        self.budget -= len(cut)
        pattern = self.rules.pattern
        return pattern.sub(MASK, cut) if pattern is not None else cut

    def value(self, value: Any, path: tuple[str, ...]) -> Any:
        if self.budget <= 0:  # past what the cap keeps: not read
            return None
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return self.mapping(value, path)
        if isinstance(value, list):
            return [self.value(item, (*path, str(i))) for i, item in enumerate(value)]
        return value

    def mapping(self, value: dict[Any, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            inner = (*path, name)
            if name.lower() in SECRET_KEYS or (self.rules.paths and self.rules.under_path(inner)):
                out[self.text(name)] = MASK
            elif name == EMBEDDING:
                out[name] = shape(item)
            else:
                out[self.text(name)] = self.value(item, inner)
        return out


def shape(value: Any) -> Any:
    """An embedding as its shape: ``"<1536 floats>"`` (a base64 one holds float32s)."""
    if isinstance(value, list) and all(isinstance(x, int | float) for x in value):
        return f"<{len(value)} floats>"
    if isinstance(value, str):
        return f"<{(len(value) * 3 // 4 - value[-2:].count('=')) // 4} floats>"
    return "<embedding>"


def capped(text: str, max_bytes: int, size: int) -> tuple[str, bool]:
    """``text`` cut to ``max_bytes`` bytes of UTF-8, with the marker naming ``size`` (the body's
    size as it came); and whether it was cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    kept = data[:max_bytes].decode("utf-8", "ignore")
    return kept + truncation_marker(max(size, len(data)), max_bytes), True


def redacted_bytes(raw: bytes, rules: Redaction, size: int | None = None) -> tuple[str, bool]:
    """A whole body (``size`` bytes, of which ``raw`` was kept): JSON is redacted as such, and
    anything else (or JSON cut short) as text."""
    size = len(raw) if size is None else size
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        text = _Walk(rules).text(raw.decode("utf-8", "replace"))
        return capped(text, rules.max_bytes, size)
    clean = _Walk(rules).value(value, ())
    return capped(msgspec.json.encode(clean).decode(), rules.max_bytes, size)


def redacted_events(raw: bytes, rules: Redaction, size: int) -> tuple[str, bool]:
    """A stream's raw server-sent events: each ``data:`` line holding JSON is redacted as JSON,
    every other line as text."""
    walk = _Walk(rules)
    lines = []
    for line in raw.decode("utf-8", "replace").split("\n"):
        if walk.budget <= 0:
            break
        head, sep, data = line.partition("data: ")
        if sep and not head and data.startswith("{"):
            try:
                event = walk.value(msgspec.json.decode(data), ())
            except msgspec.DecodeError:
                lines.append(walk.text(line))
                continue
            lines.append("data: " + msgspec.json.encode(event).decode())
        else:
            lines.append(walk.text(line))
    return capped("\n".join(lines), rules.max_bytes, size)
