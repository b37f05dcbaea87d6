"""Teams (docs/api.md, "Teams"): a member's request fits the user's and the team's limits, a
user is in one team at most, token quotas with periods, and the team's budget in /v1/usage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway
from tests.integration.chat_setup import metric
from tests.integration.test_budgets import Clock

HI = [{"role": "user", "content": "hi"}]


def _post(gw: Gateway, key: str, model: str, n: int = 1) -> list[int]:
    with gw.client(key) as client:
        return [
            client.post(
                "/v1/chat/completions", json={"model": model, "messages": HI, "max_tokens": 10}
            ).status_code
            for _ in range(n)
        ]


def test_a_team_limits_its_members_beside_their_own(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw = make_gateway()
    for model in ("one", "two"):
        gw.add_model(model, base_url=fake_openai[1], upstream_model="usage-5-5")
    team = {"team_id": "blue", "models": ["one"], "rpm_limit": 3, "token_quota": 35}
    created = gw.admin("POST", "/admin/teams", json=team)
    assert created.status_code == 201 and created.json()["members"] == []
    assert gw.admin("POST", "/admin/teams", json=team).status_code == 409
    alice, bob = gw.create_user("alice"), gw.create_user("bob")
    for user in ("alice", "bob"):
        assert gw.admin("PUT", f"/admin/teams/blue/members/{user}").status_code == 200
    assert gw.admin("POST", "/admin/teams", json={"team_id": "red"}).status_code == 201
    moved = gw.admin("PUT", "/admin/teams/red/members/alice")
    assert moved.status_code == 409  # one team at most
    assert _post(gw, alice, "two") == [404]  # not on the team's list
    # RPM 3 for the team: alice's 2 and bob's first pass, then the window is full for both
    assert _post(gw, alice, "one", 2) + _post(gw, bob, "one", 2) == [200, 200, 200, 429]
    gw.admin("PATCH", "/admin/teams/blue", json={"rpm_limit": None})
    # 3 served requests of 10 tokens: the team's 35 tokens leave room for one capped request
    codes = _post(gw, bob, "one", 3)
    assert codes == [200, 429, 429]
    with gw.client(bob) as client:
        refusal = client.post(
            "/v1/chat/completions", json={"model": "one", "messages": HI, "max_tokens": 10}
        ).json()["error"]
    assert refusal["code"] == "insufficient_quota"
    assert refusal["message"].startswith("The team token quota of 'blue' (35 tokens in total)")
    assert gw.admin("DELETE", "/admin/teams/blue/members/alice").status_code == 200
    assert _post(gw, alice, "two") == [200]  # out of the team: its limits no longer apply
    assert gw.admin("DELETE", "/admin/teams/blue/members/alice").status_code == 404
    assert gw.admin("GET", "/admin/users/bob").json()["team_id"] == "blue"
    assert gw.admin("DELETE", "/admin/teams/blue").status_code == 200
    assert gw.admin("GET", "/admin/users/bob").json()["team_id"] is None


def test_usage_shows_the_users_and_the_teams_budgets(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    clock = Clock(dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC))  # a Wednesday
    gw = make_gateway(clock=clock)
    gw.add_model("one", base_url=fake_openai[1], upstream_model="usage-500-500")
    prices = {"effective_from": "2000-01-01T00:00:00Z", "input": "10", "output": "10"}
    assert gw.admin("PUT", "/admin/models/one/prices", json=prices).status_code == 200
    team = {"team_id": "green", "budget": "5", "budget_period": "week"}
    assert gw.admin("POST", "/admin/teams", json=team).status_code == 201
    key = gw.create_user("carol", budget="2", budget_period="total")
    gw.admin("PUT", "/admin/teams/green/members/carol")
    assert _post(gw, key, "one", 2) == [200, 200]
    with gw.client(key) as client:
        budgets = {b["scope"]: b for b in client.get("/v1/usage").json()["budgets"]}
    # each: 500 prompt tokens and 10 completion tokens (max_tokens caps the 500 reported)
    assert budgets["user"]["spent"] == budgets["team"]["spent"] == "0.010200"
    assert budgets["user"]["remaining"] == "1.989800"
    assert budgets["user"]["resets_at"] is None
    assert budgets["team"] == budgets["team"] | {
        "id": "green",
        "budget": "5.000000",
        "budget_period": "week",
        "period": "2026-W50",
        "remaining": "4.989800",
        "resets_at": "2026-12-14T00:00:00Z",
    }


def test_a_token_quota_per_day_resets_the_next_day(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    clock = Clock(dt.datetime(2026, 12, 9, 23, 0, tzinfo=dt.UTC))
    gw = make_gateway(clock=clock)
    gw.add_model("one", base_url=fake_openai[1], upstream_model="usage-5-5")
    key = gw.create_user("dana", token_quota=20, token_quota_period="day")
    assert gw.admin("GET", "/admin/users/dana").json()["token_quota_period"] == "day"
    assert _post(gw, key, "one", 3) == [200, 200, 429]
    clock.move_to(dt.datetime(2026, 12, 10, 0, 0, 1, tzinfo=dt.UTC))
    assert _post(gw, key, "one") == [200]


def test_reports_group_cost_by_team_and_key_and_export_csv(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw = make_gateway()
    gw.add_model("one", base_url=fake_openai[1], upstream_model="usage-100-10")
    prices = {"effective_from": "2000-01-01T00:00:00Z", "input": "10", "output": "100"}
    gw.admin("PUT", "/admin/models/one/prices", json=prices)  # 0.002 a request
    gw.admin("POST", "/admin/teams", json={"team_id": "ops", "budget": "1"})
    erin, frank = gw.create_user("erin"), gw.create_user("frank")
    gw.admin("PUT", "/admin/teams/ops/members/erin")
    assert _post(gw, erin, "one", 2) + _post(gw, frank, "one") == [200] * 3
    by_team = gw.admin("GET", "/admin/usage", params={"group_by": "team"}).json()["data"]
    assert {(r["team"], r["cost"], r["requests"]) for r in by_team} == {
        (None, "0.002000", 1),
        ("ops", "0.004000", 2),
    }
    [key] = gw.admin("GET", "/admin/users/erin/keys").json()["data"]
    by_key = gw.admin("GET", "/admin/usage", params={"group_by": "key", "team_id": "ops"})
    assert [(r["key"], r["cost"]) for r in by_key.json()["data"]] == [(key["id"], "0.004000")]
    exported = gw.admin("GET", "/admin/usage", params={"group_by": "user", "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines() == [
        "user,prompt_tokens,completion_tokens,total_tokens,requests,errors,cost,currency",
        "erin,200,20,220,2,0,0.004000,USD",
        "frank,100,10,110,1,0,0.002000,USD",
    ]
    assert metric(gw, "gateway_cost_total", model="one") == pytest.approx(0.006)
    gw.admin("PATCH", "/admin/teams/ops", json={"name": "Ops"})  # a refresh, as every write
    assert metric(gw, "gateway_team_budget", team="ops") == 1.0
    assert metric(gw, "gateway_team_budget_spent", team="ops") == pytest.approx(0.004)
