"""Checked reads of JSON values from a caller's body: each wrong type is a 400 naming the field,
never a ``TypeError`` (a list or an object where a string belongs, a string where a list does).
Pure, no I/O; the translators read bodies through these."""

from __future__ import annotations

from collections.abc import Mapping

from lowart.errors import InvalidRequest


def get(value: object, key: str) -> object:
    """``value[key]`` when value is an object, else None."""
    return value.get(key) if isinstance(value, dict) else None


def among(value: object, names: frozenset[str]) -> bool:
    """Whether value is one of names: a list or an object is not (nor hashable)."""
    return isinstance(value, str) and value in names


def obj(value: object, param: str, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be an object", param=param)
    return value


def string(value: object, param: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a string", param=param)
    return value


def list_of(value: object, param: str) -> list[object]:
    """A list field; None is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{param} must be a list", param=param)
    return value


def number(body: Mapping[str, object], key: str) -> float | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidRequest(f"{key} must be a number", param=key)
    return value


def check_depth(value: object, param: str, limit: int) -> None:
    """Refuse a value nested deeper than ``limit`` objects and lists: vendors and validators
    recurse (docs/reliability.md, B3). Iterative, so the check itself cannot overflow."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise InvalidRequest(f"'{param}' is nested deeper than {limit} levels.", param=param)
        stack.extend((child, depth + 1) for child in children)
