"""Budget alerts (docs/api.md, "Budget alerts"): a local receiver gets each threshold of a period
once per idempotency id, signed, and a delivery it answers with 500 comes again."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from typing import Any

from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway, wait_for

SECRET = "webhook-secret-0123456789"
BODY = {"model": "priced", "messages": [{"role": "user", "content": "alert me"}]}


class Receiver:
    """An ASGI webhook receiver that records every delivery and refuses the first with 500."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.deliveries.append((headers, body))
            status = 500 if len(self.deliveries) == 1 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def ids(self) -> list[str]:
        return [headers["idempotency-key"] for headers, _ in self.deliveries]


def test_each_threshold_reaches_the_receiver_signed_once_per_id(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    receiver = Receiver()
    with run_in_thread(receiver) as server:
        gw = make_gateway(
            budget_webhook_url=server.base_url + "/hooks/budget",
            budget_webhook_secret=SECRET,
            budget_webhook_retry_s=0.05,
        )
        gw.add_model("priced", base_url=fake_openai[1], upstream_model="usage-1000-500")
        prices = {"effective_from": "2000-01-01T00:00:00Z", "input": "1", "output": "4"}
        gw.admin("PUT", "/admin/models/priced/prices", json=prices)
        key = gw.create_user("alerted", budget="0.010", budget_period="day")
        with gw.client(key) as client:  # 0.003 each: 90 % after 3, 120 % after the 4th
            codes = [client.post("/v1/chat/completions", json=BODY).status_code for _ in range(3)]
            wait_for(lambda: len(set(receiver.ids())) == 1 and len(receiver.ids()) == 2)
            codes.append(client.post("/v1/chat/completions", json=BODY).status_code)
        wait_for(lambda: len(set(receiver.ids())) == 2)
    assert codes == [200, 200, 200, 200]
    first, again, last = receiver.deliveries
    assert first == again  # refused with 500, delivered again: the same body and id
    period = json.loads(first[1])["period"]
    assert receiver.ids() == [f"user:alerted:{period}:80"] * 2 + [f"user:alerted:{period}:100"]
    for headers, body in receiver.deliveries:
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-lowart-signature"], "sha256=" + digest)
        assert headers["content-type"] == "application/json"
    payload = json.loads(last[1])
    assert payload | {"created_at": 0} == {
        "id": f"user:alerted:{period}:100",
        "scope": "user",
        "owner": "alerted",
        "period": period,
        "budget_period": "day",
        "threshold": 100,
        "amount": "0.010000",
        "spent": "0.012000",
        "unit": "USD",
        "created_at": 0,
    }
