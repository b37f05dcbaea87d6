"""L4's mechanism: a client that stops reading a stream is cut after the write timeout, and the
tokens generated for it are billed; the upstream is not read ahead without bound meanwhile."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

from tests.conftest import Gateway, wait_for

WORDS = 1_000_000  # about 6 MB of answer: far more than the socket buffers hold


def test_a_client_that_stops_reading_is_cut_and_billed(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(stream_write_timeout_s=0.5)
    gw.add_model(
        "firehose", "Mock", base_url="", params={"text": "word " * WORDS, "words_per_chunk": 500}
    )
    key = gw.create_user("stalled")
    body = json.dumps(
        {"model": "firehose", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    ).encode()
    host, port = gw.server.base_url.removeprefix("http://").split(":")
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        client.connect((host, int(port)))
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        client.recv(1024)  # the head and the first events, then the client stops reading

        def billed() -> list[tuple[str, int]]:
            gw.flush()
            return gw.sql(
                "SELECT status, completion_tokens FROM usage_records WHERE user_id = 'stalled'"
            )

        wait_for(lambda: bool(billed()), timeout=10)
    [(status, completion)] = billed()
    assert status == "cancelled"
    assert 0 < completion < WORDS  # what was generated before the cut, not the whole answer
