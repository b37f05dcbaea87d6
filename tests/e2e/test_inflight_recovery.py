"""A SIGKILL loses at most one checkpoint interval of the streams in flight (docs/operations.md,
"Requests in flight").

Five streams are relayed from a slow fake upstream; once each has delivered chunks and the usage
writer has checkpointed all five, the server is killed. The next start finds the dead instance
(its heartbeat grows stale) and bills each checkpoint once, as a ``partial``, ``estimated`` row
settled into ``token_used``; a stream that ended before the kill keeps its ``ok`` row alone.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import ThreadedServer, run_in_thread
from tests.conftest import wait_for
from tests.e2e.serve_process import ServeProcess, sql

STREAMS = 5
ENV = {
    "INFLIGHT_CHECKPOINT_S": "0.3",
    "INSTANCE_HEARTBEAT_S": "0.2",
    "INSTANCE_DEAD_AFTER_S": "1",
}
WORDS = " ".join(f"w{i}" for i in range(200))  # the fake answers with these: a long stream


@pytest.fixture
def upstream() -> Iterator[ThreadedServer]:
    with run_in_thread(FakeOpenAI()) as server:
        yield server


def _model(gw: ServeProcess, base_url: str, model_id: str, upstream_model: str) -> None:
    created = gw.admin(
        "POST",
        "/admin/models",
        json={
            "model_id": model_id,
            "vendor_type": "OpenAI",
            "base_url": base_url + "/v1",
            "api_key": "sk-up",
            "upstream_model": upstream_model,
        },
    )
    assert created.status_code == 201, created.text


def _stream(client: openai.OpenAI, chunks: Counter[int], n: int, words: str = WORDS) -> None:
    """Read one stream until it ends or the server dies under it, counting its chunks."""
    stream = client.chat.completions.create(
        model="slow-stream",
        messages=[{"role": "user", "content": f"stream {n} {words}"}],
        stream=True,
    )
    try:
        for _ in stream:
            chunks[n] += 1
    except (openai.APIError, OSError):
        pass  # killed mid-stream: what this test is about


def _tokens(db: Path) -> int:
    query = "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage_records"
    return int(sql(db, query)[0][0])


def test_sigkill_bills_streams_in_flight_once_at_their_last_checkpoint(
    tmp_path: Path, upstream: ThreadedServer
) -> None:
    db = tmp_path / "lowart.db"
    first = ServeProcess(tmp_path, ENV)
    chunks: Counter[int] = Counter()
    threads = []
    try:
        _model(first, upstream.base_url, "slow-stream", "chunkdelay-100")
        _model(first, upstream.base_url, "quick", "gpt-4o")
        key = first.create_user("streamer", token_quota=10_000_000)
        client = openai.OpenAI(base_url=first.url + "/v1", api_key=key, max_retries=0)
        quick = client.chat.completions.create(
            model="quick", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert list(quick)  # a short stream: ends with its ok row, no checkpoint
        # A stream of about three seconds: checkpointed, then ended before the kill.
        medium_words = " ".join("m" * 25)
        medium = threading.Thread(target=_stream, args=(client, chunks, -1, medium_words))
        medium.start()
        for n in range(STREAMS):
            thread = threading.Thread(target=_stream, args=(client, chunks, n), daemon=True)
            thread.start()
            threads.append(thread)
        inflight = "SELECT COUNT(*) FROM inflight_requests"
        wait_for(lambda: sql(db, inflight) == [(STREAMS + 1,)], timeout=10)
        medium.join(timeout=10)
        wait_for(lambda: min(chunks[n] for n in range(STREAMS)) >= 10, timeout=20)
        # Checkpoints of all five, each written after its stream delivered text.
        wait_for(
            lambda: (
                sql(db, "SELECT COUNT(*) FROM inflight_requests WHERE completion_tokens > 0")
                == [(STREAMS,)]
            ),
            timeout=10,
        )
    finally:
        first.kill()
    for thread in threads:
        thread.join(timeout=10)
    assert min(chunks[n] for n in range(STREAMS)) >= 10
    checkpoints = dict(
        sql(db, "SELECT request_id, prompt_tokens + completion_tokens FROM inflight_requests")
    )
    assert len(checkpoints) == STREAMS
    before = sql(db, "SELECT status, COUNT(*) FROM usage_records GROUP BY status")
    assert before == [("ok", 2)]  # the quick and the medium streams, without checkpoints
    token_used = sql(db, "SELECT token_used FROM users WHERE user_id = 'streamer'")[0][0]
    assert token_used == _tokens(db) > 0  # nothing of the killed streams is billed yet

    with ServeProcess(tmp_path, ENV) as second:
        wait_for(lambda: sql(db, inflight) == [(0,)], timeout=10)
        partial = sql(
            db,
            "SELECT request_id, prompt_tokens + completion_tokens, estimated, status"
            " FROM usage_records WHERE status != 'ok'",
        )
        assert sorted(partial) == sorted(
            (request_id, tokens, 1, "partial") for request_id, tokens in checkpoints.items()
        )
        recovered = sum(checkpoints.values())
        used = second.admin("GET", "/admin/users").json()["data"]
        streamer = next(u for u in used if u["user_id"] == "streamer")
        assert streamer["token_used"] == token_used + recovered == _tokens(db)
        # Settled once: more beats of the live instance bill nothing more.
        beat = sql(db, "SELECT heartbeat_at FROM instances")[0][0]
        wait_for(lambda: sql(db, "SELECT heartbeat_at FROM instances")[0][0] > beat + 0.3)
        assert len(sql(db, "SELECT instance_id FROM instances")) == 1  # the dead one is gone
        assert _tokens(db) == token_used + recovered
        assert sql(db, "SELECT COUNT(*) FROM usage_records") == [(2 + STREAMS,)]
