"""How one setting is declared: its variable, its parser, its default and its documentation.

A setting is a field of a group dataclass whose default is :func:`setting`: the field's name,
type and default are written there once, beside the environment variable it is read from and
the line that documents it (the README's settings table is generated from these).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lowart.errors import StartupError

T = TypeVar("T")
Parser = Callable[[str, str], T]  # (variable, its stripped non-blank value) -> the setting

SPEC = "lowart.setting"  # the key of a field's metadata that holds its Spec


@dataclass(frozen=True)
class Spec:
    """What the loader and the documentation need to know about one setting's field."""

    env: str
    parse: Parser[Any]
    doc: str
    shown: str  # the default as the README shows it, in Markdown ("": the value, as code)
    blank_is_default: bool  # False: set but blank is refused (secrets)


def setting(
    env: str,
    default: T,
    parse: Parser[T],
    doc: str,
    *,
    shown: str = "",
    blank_is_default: bool = True,
) -> T:
    """A setting field read from ``env``; unset (or blank, unless refused) keeps ``default``."""
    spec = Spec(env, parse, doc, shown, blank_is_default)
    return dataclasses.field(default=default, metadata={SPEC: spec})


def computed_setting(
    env: str, factory: Callable[[], T], parse: Parser[T], doc: str, shown: str
) -> T:
    """A setting whose default is computed when the settings are made (the working directory)."""
    spec = Spec(env, parse, doc, shown, blank_is_default=True)
    return dataclasses.field(default_factory=factory, metadata={SPEC: spec})


def text(_name: str, raw: str) -> str:
    return raw


def lower(_name: str, raw: str) -> str:
    return raw.lower()


def path(_name: str, raw: str) -> Path:
    return Path(raw)


def integer(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise StartupError(f"{name} must be an integer, got {raw!r}") from exc


def number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise StartupError(f"{name} must be a number, got {raw!r}") from exc


def boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise StartupError(f"{name} must be true or false, got {value!r}")


def octal(name: str, raw: str) -> int:
    try:
        return int(raw, 8)
    except ValueError as exc:
        raise StartupError(f"{name} must be an octal mode such as 0660, got {raw!r}") from exc


def networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (or single addresses), each normalised: ``10.0.0.0/8, ::1``."""
    parsed = []
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            parsed.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError as exc:
            raise StartupError(f"{name} must list CIDRs such as 10.0.0.0/8, got {item!r}") from exc
    return tuple(parsed)


def upper_choice(*choices: str) -> Parser[str]:
    """One of ``choices``, in any case."""

    def parse(name: str, raw: str) -> str:
        value = raw.upper()
        if value not in choices:
            raise StartupError(f"{name} must be {' or '.join(choices)}, got {value!r}")
        return value

    return parse


def currency(name: str, raw: str) -> str:
    """An ISO 4217 currency code: three letters, any case."""
    value = raw.strip().upper()
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise StartupError(f"{name} must be a three-letter currency code such as USD, got {raw!r}")
    return value


def time_zone(name: str, raw: str) -> str:
    """An IANA time zone name that ``zoneinfo`` knows (``UTC``, ``Europe/Paris``)."""
    value = raw.strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise StartupError(f"{name} must be a time zone such as Europe/Paris, got {raw!r}") from exc
    return value


def secret(minimum: int) -> Parser[str | None]:
    """A secret at least ``minimum`` characters long: set but empty or blank is refused, never
    taken as unset (an unexpanded ``$VAR`` must not quietly generate a key)."""

    def parse(name: str, raw: str) -> str | None:
        if len(raw) < minimum:
            raise StartupError(f"{name} must be at least {minimum} characters long")
        return raw

    return parse
