"""Deployments end to end (docs/api.md, "Deployments"): one model name over several upstreams
of the fake OpenAI server (each deployment its own ``upstream_model``, so the fake's calls tell
them apart), through the admin API and the official SDK."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway, wait_for
from tests.integration.chat_setup import metric

MESSAGES = [{"role": "user", "content": "hello deployments"}]
VENDOR_KEY = "sk-own-key-0000"
DEPLOY_KEY = "sk-deploy-secret-9876"


def add_pool(
    gw: Gateway,
    base_url: str,
    model_id: str,
    own: str,
    others: dict[str, dict[str, Any]],
    **params: Any,
) -> None:
    """A model whose own upstream is ``own``, with a deployment per entry of ``others``."""
    gw.add_model(model_id, base_url=base_url, api_key=VENDOR_KEY, upstream_model=own, params=params)
    for deployment_id, fields in others.items():
        body = {"id": deployment_id, "vendor_type": "OpenAI", "base_url": base_url, **fields}
        response = gw.admin("POST", f"/admin/models/{model_id}/deployments", json=body)
        assert response.status_code == 201, response.text


def upstream_calls(fake: FakeOpenAI, tag: str) -> Counter[str]:
    return Counter(call["model"] for call in fake.calls if tag in call["model"])


def listing(gw: Gateway, model_id: str) -> dict[str, dict[str, Any]]:
    answer = gw.admin("GET", f"/admin/models/{model_id}/deployments").json()
    return {d["id"]: d for d in answer["data"]}


def test_weighted_deployments_share_the_load_and_are_managed_by_the_admin_api(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway()
    tag = "w" + secrets.token_hex(3)
    a, b = f"ok:{tag}-a", f"ok:{tag}-b"
    add_pool(gw, base, "pool", a, {"b": {"upstream_model": b, "api_key": DEPLOY_KEY}}, weight=3)
    created = gw.admin("GET", "/admin/models/pool/deployments/b")
    assert created.json()["api_key_last4"] == "9876" and DEPLOY_KEY not in created.text
    body = {"id": "b", "vendor_type": "OpenAI", "base_url": base}
    assert gw.admin("POST", "/admin/models/pool/deployments", json=body).status_code == 409
    body["id"] = "default"
    assert gw.admin("POST", "/admin/models/pool/deployments", json=body).status_code == 400
    assert gw.admin("POST", "/admin/models/none/deployments", json=body).status_code == 404
    bad = {"params": {"strategy": "fastest"}}
    assert gw.admin("PATCH", "/admin/models/pool", json=bad).json()["error"]["param"] == (
        "params.strategy"
    )

    client = gw.openai(gw.create_user())
    for _ in range(400):
        client.chat.completions.create(model="pool", messages=MESSAGES)
    counts = upstream_calls(fake, tag)
    assert counts[a] + counts[b] == 400
    assert 0.65 < counts[a] / 400 < 0.85  # 3:1 expects 300 (the binomial's sd is 8.7)
    keys = {c["headers"]["authorization"] for c in fake.calls if c["model"] == b}
    assert keys == {f"Bearer {DEPLOY_KEY}"}

    gw.flush()
    rows = gw.sql(
        "SELECT deployment, count(*) FROM usage_records WHERE requested_model = 'pool' "
        "GROUP BY deployment"
    )
    assert dict(rows) == {"default": counts[a], "b": counts[b]}
    assert metric(gw, "gateway_requests_total", model="pool", deployment="b") == counts[b]
    health = listing(gw, "pool")
    assert health["default"]["health"]["served"] == counts[a]
    assert health["b"]["health"]["state"] == "closed"

    patched = gw.admin("PATCH", "/admin/models/pool/deployments/b", json={"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    for _ in range(20):
        client.chat.completions.create(model="pool", messages=MESSAGES)
    assert upstream_calls(fake, tag)[b] == counts[b]
    assert gw.admin("DELETE", "/admin/models/pool/deployments/b").status_code == 200
    assert gw.admin("GET", "/admin/models/pool/deployments/b").status_code == 404
    assert list(listing(gw, "pool")) == ["default"]


def test_a_failing_deployment_is_ejected_then_probed_with_no_client_error(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway(circuit_min_calls=2, circuit_cooldown_s=0.3, retries=0)
    tag = "e" + secrets.token_hex(3)
    broken, good, fixed = f"error-500:{tag}-a", f"ok:{tag}-b", f"ok:{tag}-a-fixed"
    add_pool(gw, base, "ejecting", broken, {"b": {"upstream_model": good}}, strategy="priority")
    client = gw.openai(gw.create_user())

    def ask() -> bool:
        return bool(client.chat.completions.create(model="ejecting", messages=MESSAGES).choices)

    for _ in range(12):  # any client error raises
        assert ask()
    assert upstream_calls(fake, tag)[broken] == 2  # the breaker's threshold, then skipped
    assert listing(gw, "ejecting")["default"]["health"]["state"] == "open"
    wait_for(lambda: ask() and upstream_calls(fake, tag)[broken] == 3, timeout=3)  # the probe
    assert gw.admin("PATCH", "/admin/models/ejecting", json={"upstream_model": fixed}).is_success
    wait_for(lambda: ask() and upstream_calls(fake, tag)[fixed] == 1, timeout=3)  # probed, ok
    before = upstream_calls(fake, tag)[good]
    for _ in range(5):
        assert ask()
    assert upstream_calls(fake, tag)[good] == before  # closed again: first by priority
    assert listing(gw, "ejecting")["default"]["health"]["state"] == "closed"


def test_a_429_cools_its_deployment_and_the_others_absorb_the_load(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway()
    tag = "r" + secrets.token_hex(3)
    limited, good = f"error-429:retryafter-30:{tag}-a", f"ok:{tag}-b"
    add_pool(gw, base, "cooling", limited, {"b": {"upstream_model": good}}, strategy="priority")
    client = gw.openai(gw.create_user())
    started = time.monotonic()
    for i in range(30):  # a 429 would raise
        if i % 3:
            client.chat.completions.create(model="cooling", messages=MESSAGES)
        else:
            list(client.chat.completions.create(model="cooling", messages=MESSAGES, stream=True))
    counts = upstream_calls(fake, tag)
    assert (counts[limited], counts[good]) == (1, 30)
    live = listing(gw, "cooling")["default"]["health"]
    assert live["state"] == "cooling" and live["last_error"] == "UpstreamRateLimited"
    assert 30 - (time.monotonic() - started) - 1 < live["cooling_s"] <= 30


def test_least_in_flight_keeps_closed_loop_clients_off_the_slow_deployment(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway()
    tag = "l" + secrets.token_hex(3)
    slow, fast = f"slow-300:{tag}-a", f"ok:{tag}-b"
    add_pool(gw, base, "busy", slow, {"b": {"upstream_model": fast}}, strategy="least_in_flight")
    key, errors = gw.create_user(), []
    stop = threading.Event()

    def closed_loop() -> None:
        with httpx.Client(base_url=gw.v1, headers={"authorization": f"Bearer {key}"}) as c:
            while not stop.is_set():
                answer = c.post("/chat/completions", json={"model": "busy", "messages": MESSAGES})
                if answer.status_code != 200:
                    errors.append(answer.status_code)

    clients = [threading.Thread(target=closed_loop) for _ in range(4)]
    for thread in clients:
        thread.start()
    wait_for(lambda: upstream_calls(fake, tag)[fast] >= 150, timeout=20)
    stop.set()
    for thread in clients:
        thread.join()
    counts = upstream_calls(fake, tag)
    assert not errors
    # Each slow request holds a client for 300 ms while the others loop on the fast one; the
    # slow one is picked only when it has no more in flight than the fast one.
    assert counts[slow] * 10 < counts[fast]


def test_sticky_sessions_stay_on_one_deployment_and_move_when_it_is_ejected(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway(
        circuit_min_calls=2, circuit_failure_ratio=0.1, circuit_cooldown_s=60.0, retries=0
    )
    tag = "s" + secrets.token_hex(3)
    names = {"default": f"ok:{tag}-default", "b": f"ok:{tag}-b", "c": f"ok:{tag}-c"}
    others = {d: {"upstream_model": names[d]} for d in ("b", "c")}
    add_pool(gw, base, "sticky", names["default"], others, sticky=True)
    client = gw.openai(gw.create_user())

    def served(session: str, n: int) -> set[str]:
        mark = len(fake.calls)
        for _ in range(n):
            client.chat.completions.create(
                model="sticky",
                messages=[{"role": "user", "content": session}],
                extra_headers={"x-session-id": session},
            )
        return {
            c["model"] for c in fake.calls[mark:] if c["body"]["messages"][0]["content"] == session
        }  # type: ignore[index]

    homes = {}
    for n in range(4):
        got = served(f"conv-{n}", 6)
        assert len(got) == 1  # 100 % of a session's requests on one deployment
        homes[f"conv-{n}"] = got.pop()
    assert len(set(homes.values())) >= 2  # sessions spread over the deployments
    home = homes["conv-0"]
    [ejected] = [d for d, up in names.items() if up == home]
    path = (
        "/admin/models/sticky"
        if ejected == "default"
        else f"/admin/models/sticky/deployments/{ejected}"
    )
    failing = f"error-500:{tag}-{ejected}-down"
    assert gw.admin("PATCH", path, json={"upstream_model": failing}).is_success
    moved = served("conv-0", 10) - {failing}
    assert len(moved) == 1 and home not in moved  # one new home while the old one is ejected
    # At most 24 successes, then failures: the breaker's ratio of 0.1 is reached by the third.
    failures = upstream_calls(fake, tag)[failing]
    assert 2 <= failures <= 3
    assert listing(gw, "sticky")[ejected]["health"]["state"] == "open"
    assert served("conv-0", 5) == moved  # skipped while ejected
    assert upstream_calls(fake, tag)[failing] == failures


@pytest.mark.pg
@pytest.mark.redis
def test_deployment_rpm_caps_hold_across_two_instances_on_redis(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str], pg_url: str
) -> None:
    fake, base = fake_openai
    settings = {"database_url": pg_url, "redis_url": "redis://127.0.0.1:6379/0"}
    one, two = make_gateway(**settings), make_gateway(**settings)
    tag = "c" + secrets.token_hex(3)
    model_id = "capped-" + tag
    a, b = f"ok:{tag}-a", f"ok:{tag}-b"
    add_pool(one, base, model_id, a, {"b": {"upstream_model": b, "rpm_cap": 3}}, rpm_cap=4)
    key = one.create_user()

    def routed(gw: Gateway) -> bool:
        services = gw.app.services
        entry = services.directory.model(model_id) if services is not None else None
        return entry is not None and entry.routing is not None

    wait_for(lambda: routed(two), timeout=5)
    statuses = Counter()
    for i in range(16):
        with (one if i % 2 else two).client(key) as c:
            answer = c.post("/v1/chat/completions", json={"model": model_id, "messages": MESSAGES})
            statuses[answer.status_code] += 1
    counts = upstream_calls(fake, tag)
    assert (counts[a], counts[b]) == (4, 3)  # each at its cap, counted by both instances
    assert statuses == {200: 7, 503: 9}


def test_attempts_go_round_the_deployments_before_a_retry_and_then_the_fallback(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway(retries=1, retry_backoff_ms=10)
    tag = "o" + secrets.token_hex(3)
    a, b = f"error-500:{tag}-a", f"error-502:{tag}-b"
    add_pool(gw, base, "round", a, {"b": {"upstream_model": b}}, strategy="priority")
    gw.add_model("round-backup", base_url=base, upstream_model=f"ok:{tag}-backup")
    assert gw.admin("PUT", "/admin/models/round/fallbacks", json={"fallbacks": ["round-backup"]})
    client = gw.openai(gw.create_user())
    raw = client.chat.completions.with_raw_response.create(model="round", messages=MESSAGES)
    assert raw.headers["x-lowart-model"] == "round-backup"
    assert [c["model"] for c in fake.calls if tag in c["model"]] == [a, b, a, f"ok:{tag}-backup"]
    gw.flush()
    rows = gw.sql(
        "SELECT served_model, deployment, status FROM usage_records WHERE request_id = ? "
        "ORDER BY id",
        (raw.headers["x-request-id"],),
    )
    assert rows == [
        ("round", "default", "error"),
        ("round", "b", "error"),
        ("round", "default", "error"),
        ("round-backup", "default", "ok"),
    ]


def test_a_one_deployment_model_keeps_to_its_own_rpm_cap(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway()
    tag = "q" + secrets.token_hex(3)
    gw.add_model("alone", base_url=base, upstream_model=f"ok:{tag}", params={"rpm_cap": 2})
    with gw.client(gw.create_user()) as client:
        body = {"model": "alone", "messages": MESSAGES}
        statuses = [client.post("/v1/chat/completions", json=body).status_code for _ in range(3)]
    assert statuses == [200, 200, 503]
    assert upstream_calls(fake, tag)[f"ok:{tag}"] == 2


def test_a_deployment_at_its_tpm_cap_is_skipped_for_the_next(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway()
    tag = "t" + secrets.token_hex(3)
    a, b = f"usage-10-10:{tag}-a", f"ok:{tag}-b"  # a reports 20 tokens per answer
    add_pool(gw, base, "tokens", a, {"b": {"upstream_model": b}}, strategy="priority", tpm_cap=30)
    client = gw.openai(gw.create_user())
    for _ in range(4):
        client.chat.completions.create(model="tokens", messages=MESSAGES)
    assert [c["model"] for c in fake.calls if tag in c["model"]] == [a, a, b, b]  # 20, 40 ≥ 30
