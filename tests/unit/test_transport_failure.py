"""Transport failures in words: the kind, the host and a status, never the exception's text."""

from __future__ import annotations

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from lowart.providers.transport_failure import describe, host_of, status_of
from lowart.security.ssrf import ForbiddenDestination

URL_ = "https://user:secret@vendor.test:8443/v1/chat?key=sk-in-query"
KEY = "sk-vendor-key-in-a-header"


def _handshake_refused() -> aiohttp.WSServerHandshakeError:
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {KEY}"}))
    info = aiohttp.RequestInfo(URL("ws://vendor.test:8443/ws"), "GET", headers)
    return aiohttp.WSServerHandshakeError(info, (), status=403, message="Invalid response status")


def test_host_of_keeps_only_host_and_port() -> None:
    assert host_of(URL_) == "vendor.test:8443"
    assert host_of("http://127.0.0.1/v1") == "127.0.0.1"
    assert host_of("not a url") == "the upstream"


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (aiohttp.ServerDisconnectedError(), "vendor.test:8443 closed the connection"),
        (aiohttp.ClientPayloadError("cut"), "the answer from vendor.test:8443 was cut off"),
        (ConnectionResetError(104, "reset"), "connection reset by vendor.test:8443"),
        (aiohttp.ClientOSError(104, "reset"), "connection reset by vendor.test:8443"),
        (ForbiddenDestination("no"), "vendor.test:8443 is not an allowed destination"),
        (ConnectionRefusedError(111, "refused"), "connection refused by vendor.test:8443"),
        (aiohttp.ClientError("anything"), "the connection to vendor.test:8443 failed"),
    ],
)
def test_describe_names_the_reason_in_words(exc: BaseException, words: str) -> None:
    assert describe(exc, URL_) == words


def test_a_refused_handshake_is_told_by_its_status_not_its_request() -> None:
    exc = _handshake_refused()
    assert KEY in repr(exc)  # what must never be logged
    words = describe(exc, "ws://vendor.test:8443/ws")
    assert words == "vendor.test:8443 refused the websocket handshake (status 403)"
    assert status_of(exc) == 403
    assert status_of(aiohttp.ServerDisconnectedError()) is None
