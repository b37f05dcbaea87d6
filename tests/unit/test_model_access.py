"""``params.auth_header`` and ``params.query`` (docs/api.md, "OpenAI-compatible vendors that
authenticate otherwise"): checked on registration, prepared once when the directory loads a
model."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from lowart.errors import InvalidRequest
from lowart.model_entry import DEFAULT_ACCESS, MAX_QUERY_CHARS, MAX_QUERY_PARAMS, access_of
from lowart.providers.registry import VendorTable
from tests.unit.test_directory import directory, model, snapshot

TABLE = VendorTable()


def test_access_is_prepared_from_params() -> None:
    query = {"api-version": "2024-10-21", "a b": "x&y=z/é", "n": 3, "on": True}
    access = access_of({"auth_header": "API-Key", "query": query})
    assert access.auth_header == "api-key"
    assert access.query == "?api-version=2024-10-21&a%20b=x%26y%3Dz%2F%C3%A9&n=3&on=true"
    assert access_of({}) is DEFAULT_ACCESS
    assert access_of({"auth_header": "Authorization", "query": {}}) is DEFAULT_ACCESS


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"auth_header": "host"}, "params.auth_header"),
        ({"auth_header": "Transfer-Encoding"}, "params.auth_header"),
        ({"auth_header": "content-length"}, "params.auth_header"),
        ({"auth_header": "connection"}, "params.auth_header"),
        ({"auth_header": "api key"}, "params.auth_header"),
        ({"auth_header": "api-key\r\nx-evil: 1"}, "params.auth_header"),
        ({"auth_header": ""}, "params.auth_header"),
        ({"auth_header": "h" * 65}, "params.auth_header"),
        ({"auth_header": 7}, "params.auth_header"),
        ({"query": ["api-version"]}, "params.query"),
        ({"query": "api-version=1"}, "params.query"),
        ({"query": {"api-version": "1\r\nx"}}, "params.query"),
        ({"query": {"a\x00": "1"}}, "params.query"),
        ({"query": {"a": None}}, "params.query"),
        ({"query": {"a": {"b": 1}}}, "params.query"),
        ({"query": {"a": ""}}, "params.query"),
        ({"query": {"a": "v" * (MAX_QUERY_CHARS + 1)}}, "params.query"),
        ({"query": {f"k{i}": "v" for i in range(MAX_QUERY_PARAMS + 1)}}, "params.query"),
    ],
)
def test_params_that_cannot_be_sent_are_refused(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        TABLE.vendor("OpenAI").check_params(params)
    assert refused.value.param == param and refused.value.status == 400


def test_only_openai_compatible_vendors_take_them() -> None:
    TABLE.vendor("OpenAI").check_params({"auth_header": "api-key", "query": {"v": "1"}})
    for vendor in ("Anthropic", "Mock"):
        with pytest.raises(InvalidRequest) as refused:
            TABLE.vendor(vendor).check_params({"query": {"v": "1"}})
        assert refused.value.param == "params.query"


def test_the_directory_prepares_access_once_and_skips_a_row_it_cannot_send() -> None:
    azure = {"auth_header": "api-key", "query": {"api-version": "2024-10-21"}}
    broken = {"auth_header": "host"}
    with capture_logs() as logs:
        d = directory(snapshot(models=(model("azure", params=azure), model("bad", params=broken))))
    entry = d.model("azure")
    assert entry is not None and entry.access.auth_header == "api-key"
    assert entry.access.query == "?api-version=2024-10-21"
    assert d.model("bad") is None
    assert any(e["event"] == "model_params_invalid" and e["model_id"] == "bad" for e in logs)
