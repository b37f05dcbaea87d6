"""The admin audit log's difference between two states (docs/operations.md, "Admin audit
log"): only what changed, created objects from null, deleted ones to null, secrets as ***."""

from __future__ import annotations

from typing import Any

import pytest

from lowart.storage.audit_states import changes

SECRET_A, SECRET_B = "9f" * 32, "a0" * 32  # the digests a state holds for a secret


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, {"rpm_limit": 5, "name": None}, {"rpm_limit": {"from": None, "to": 5}}),
        ({"rpm_limit": 5}, None, {"rpm_limit": {"from": 5, "to": None}}),
        (
            {"rpm_limit": 5, "name": "a"},
            {"rpm_limit": 6, "name": "a"},
            {"rpm_limit": {"from": 5, "to": 6}},
        ),
        ({"rpm_limit": 5}, {"rpm_limit": 5}, {}),
        ({"api_key": None}, {"api_key": SECRET_A}, {"api_key": {"from": None, "to": "***"}}),
        ({"api_key": SECRET_A}, {"api_key": SECRET_B}, {"api_key": {"from": "***", "to": "***"}}),
        ({"env": SECRET_A}, {"env": None}, {"env": {"from": "***", "to": None}}),
        ({"headers": SECRET_A}, {"headers": SECRET_A}, {}),  # sealed anew, same value
        (
            None,
            {"key": "***", "user_id": "u"},
            {"key": {"from": None, "to": "***"}, "user_id": {"from": None, "to": "u"}},
        ),
        (
            {"fallbacks": ["a"]},
            {"fallbacks": ["a", "b"]},
            {"fallbacks": {"from": ["a"], "to": ["a", "b"]}},
        ),
    ],
)
def test_changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    diff = changes(before, after)
    assert diff == expected
    assert SECRET_A not in str(diff) and SECRET_B not in str(diff)
