"""The invalidation listener (docs/deployment.md, "Scaled out"): an instance deaf to
pub/sub at start, or after losing its subscription, misses nothing once it subscribes again.

Instance ``b`` reaches a private Redis through a fault proxy that delays every answer by
``LATENCY_MS``, far past ``REDIS_TIMEOUT_MS``: its listener's subscription holds only seconds
after the start, as on a busy machine. ``CACHE_REFRESH_S`` is 60 s, so only the listener (a
message, or the reload after a subscribe) can make ``b`` see what ``a`` changed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest

from lowart.catalog.invalidations import resubscribe_delay
from lowart.testing.fault_proxy import FaultProxy
from tests.conftest import MASTER_KEY, Gateway, wait_for
from tests.private_servers import PrivateRedis

pytestmark = pytest.mark.pg
LATENCY_MS = 1200  # each answer on b's first connections: its subscription takes 2+ of them


def test_resubscribing_is_at_once_then_backs_off_up_to_the_cap() -> None:
    delays = [resubscribe_delay(failures, 0.1, 0.5) for failures in range(7)]
    assert delays == [0.0, 0.0, 0.1, 0.2, 0.4, 0.5, 0.5]


def _models_status(gateway: Gateway, key: str) -> int:
    return httpx.get(
        gateway.url + "/v1/models", headers={"authorization": f"Bearer {key}"}
    ).status_code


def _revoke(gateway: Gateway, user_id: str, key_id: str) -> None:
    assert gateway.admin("DELETE", f"/admin/keys/{key_id}").status_code == 200, user_id


def test_a_listener_deaf_at_start_or_after_a_cut_misses_no_revocation(
    make_gateway: Callable[..., Gateway], pg_url: str, private_redis: PrivateRedis
) -> None:
    shared = {"database_url": pg_url, "master_key": MASTER_KEY, "cache_refresh_s": 60.0}
    a = make_gateway(redis_url=private_redis.url, **shared)
    user_id = "deaf-" + secrets.token_hex(4)
    first = a.create_user(user_id)
    second = a.admin("POST", f"/admin/users/{user_id}/keys").json()
    [first_id] = [
        k["id"]
        for k in a.admin("GET", f"/admin/users/{user_id}/keys").json()["data"]
        if k["id"] != second["id"]
    ]

    with FaultProxy.in_thread("127.0.0.1", private_redis.port, f"latency:{LATENCY_MS}") as served:
        proxy = served.proxy
        b = make_gateway(redis_url=f"redis://127.0.0.1:{proxy.port}/0", **shared)
        wait_for(lambda: proxy.connections >= 2)  # the hot path's and the listener's: both slow
        proxy.mode = "pass"  # /ready's ping connects now, and is answered at once
        ready = httpx.get(b.url + "/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["error"]["message"] == "Not ready: invalidations unavailable."
        assert _models_status(b, first) == 200

        # Revoked while b is not yet subscribed: the message reaches nobody there.
        _revoke(a, user_id, first_id)
        wait_for(lambda: _models_status(b, first) == 401, timeout=5 * LATENCY_MS / 1000 + 5)
        ready = httpx.get(b.url + "/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "invalidations": "ok"}

        # The subscription is cut: b subscribes again at once and reloads.
        served.close_connections()
        _revoke(a, user_id, second["id"])
        wait_for(lambda: _models_status(b, second["key"]) == 401, timeout=5)
        assert _models_status(a, second["key"]) == 401
