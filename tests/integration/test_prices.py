"""Prices and cost end to end: cache tokens priced at their own rates for OpenAI and Anthropic
vendors in both directions of translation, a price change mid-day, and unpriced models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway

RATES = {"input": "3.00", "output": "15.00", "cache_read": "0.30", "cache_write": "3.75"}
# (prompt, completion, cache read, cache write) as each fake reports them
OPENAI_USAGE = (1000, 200, 400, 0)  # cached tokens are part of prompt_tokens
ANTHROPIC_USAGE = (500 + 300 + 100, 50, 300, 100)  # input_tokens excludes both cache counts


def expected_cost(prompt: int, completion: int, read: int, write: int) -> Decimal:
    """The cost by hand, in the currency: each kind of token at its own rate per million."""
    rate = {name: Decimal(value) for name, value in RATES.items()}
    per_million = (
        (prompt - read - write) * rate["input"]
        + read * rate["cache_read"]
        + write * rate["cache_write"]
        + completion * rate["output"]
    )
    return (per_million / 1_000_000).quantize(Decimal("0.000001"))


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    app = FakeAnthropic()
    with run_in_thread(app) as server:
        yield app, server.base_url


@pytest.fixture
def gw(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    fake_anthropic: tuple[FakeAnthropic, str],
) -> Gateway:
    gateway = make_gateway()
    common = {"api_key": "sk-v"}
    gateway.add_model(
        "oa-cache", base_url=fake_openai[1], upstream_model="usage-1000-200:cached-400", **common
    )
    gateway.add_model(
        "an-cache",
        "Anthropic",
        base_url=fake_anthropic[1],
        upstream_model="usage-500-50:cache-300-100",
        **common,
    )
    gateway.add_model("oa-fixed", base_url=fake_openai[1], upstream_model="usage-1000-1000")
    gateway.add_model("oa-free", base_url=fake_openai[1], upstream_model="ok")
    return gateway


def put_price(gw: Gateway, model_id: str, **fields: Any) -> dict[str, Any]:
    response = gw.admin("PUT", f"/admin/models/{model_id}/prices", json=fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


def costs(gw: Gateway, model: str) -> list[str]:
    gw.flush()
    rows = gw.sql(
        "SELECT cost FROM usage_records WHERE requested_model = ? AND status = 'ok' ORDER BY id",
        (model,),
    )
    return [f"{Decimal(cost) / 1_000_000:.6f}" for (cost,) in rows]


def _openai_call(gw: Gateway, key: str, model: str, stream: bool) -> None:
    client = gw.openai(key)
    messages: Any = [{"role": "user", "content": "price me"}]
    if stream:
        chunks = client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        assert [c for c in chunks if c.usage is not None]
    else:
        assert client.chat.completions.create(model=model, messages=messages).usage is not None


def _anthropic_call(gw: Gateway, key: str, model: str, stream: bool) -> None:
    client = gw.anthropic(key)
    messages: Any = [{"role": "user", "content": "price me"}]
    if stream:
        with client.messages.stream(model=model, max_tokens=1000, messages=messages) as events:
            assert events.get_final_message().usage is not None
    else:
        assert client.messages.create(model=model, max_tokens=1000, messages=messages).usage


def test_cache_tokens_priced_at_their_own_rates_in_both_directions(gw: Gateway) -> None:
    for model in ("oa-cache", "an-cache"):
        put_price(gw, model, effective_from="2000-01-01T00:00:00Z", **RATES)
    key = gw.create_user("cache-user")
    for call in (_openai_call, _anthropic_call):  # same format and translated, both vendors
        for model in ("oa-cache", "an-cache"):
            for stream in (False, True):
                call(gw, key, model, stream)
    assert costs(gw, "oa-cache") == [str(expected_cost(*OPENAI_USAGE))] * 4
    assert costs(gw, "an-cache") == [str(expected_cost(*ANTHROPIC_USAGE))] * 4
    rows = gw.sql(
        "SELECT DISTINCT prompt_tokens, cache_read_tokens, cache_write_tokens FROM usage_records"
        " WHERE requested_model = 'an-cache'"
    )
    assert rows == [(900, 300, 100)]
    report = gw.admin("GET", "/admin/usage", params={"group_by": "model"}).json()
    assert report["currency"] == "USD"
    by_model = {item["model"]: item["cost"] for item in report["data"]}
    assert by_model["an-cache"] == str(expected_cost(*ANTHROPIC_USAGE) * 4)
    with gw.client(key) as client:
        mine = client.get("/v1/usage").json()
    total = (expected_cost(*OPENAI_USAGE) + expected_cost(*ANTHROPIC_USAGE)) * 4
    assert mine["cost"] == str(total)
    assert mine["currency"] == "USD"


def test_price_change_mid_day_keeps_each_rows_price(gw: Gateway) -> None:
    put_price(gw, "oa-fixed", effective_from="2000-01-01T00:00:00Z", input="2", output="4")
    key = gw.create_user("mid-day")
    _openai_call(gw, key, "oa-fixed", stream=False)
    later = put_price(gw, "oa-fixed", input="1.5", output="0.5")  # from now on
    assert later["price"]["input"] == "1.500000"
    assert [p["input"] for p in later["history"]] == ["2.000000", "1.500000"]
    _openai_call(gw, key, "oa-fixed", stream=True)
    assert costs(gw, "oa-fixed") == ["0.006000", "0.002000"]  # 1000 in + 1000 out each
    report = gw.admin("GET", "/admin/usage", params={"model": "oa-fixed"}).json()
    assert report["data"][0]["cost"] == "0.008000"


def test_unpriced_models_are_marked_and_cost_nothing(gw: Gateway) -> None:
    put_price(gw, "oa-fixed", effective_from="2000-01-01T00:00:00Z", output="1")
    put_price(gw, "oa-cache", effective_from="2999-01-01T00:00:00Z", output="1")  # not yet
    listed = {m["model_id"]: m for m in gw.admin("GET", "/admin/models").json()["data"]}
    assert listed["oa-free"]["pricing"] == "unpriced"
    assert listed["oa-free"]["price"] is None
    assert listed["oa-cache"]["pricing"] == "unpriced"
    assert listed["oa-fixed"]["pricing"] == "priced"
    assert listed["oa-fixed"]["price"]["output"] == "1.000000"
    assert gw.admin("GET", "/admin/models/oa-free").json()["pricing"] == "unpriced"
    key = gw.create_user("free")
    _openai_call(gw, key, "oa-free", stream=False)
    assert costs(gw, "oa-free") == ["0.000000"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 0.1}, "input"),  # a float would be inexact: strings only
        ({"output": "0.0000001"}, "output"),  # beyond micro-units
        ({"image": "-1"}, "image"),
        ({"embedding": "lots"}, "embedding"),
        ({"currency": "EUR"}, "currency"),
        ({"effective_from": "yesterday"}, "effective_from"),
        ({"discount": "1"}, "discount"),
    ],
)
def test_bad_prices_are_refused_naming_the_field(
    gw: Gateway, body: dict[str, Any], param: str
) -> None:
    response = gw.admin("PUT", "/admin/models/oa-fixed/prices", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_prices_of_an_unknown_model_are_404(gw: Gateway) -> None:
    assert gw.admin("GET", "/admin/models/nope/prices").status_code == 404
    assert gw.admin("PUT", "/admin/models/nope/prices", json={"input": "1"}).status_code == 404
