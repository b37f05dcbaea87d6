"""The request_logs table on SQLite and PostgreSQL: batches in, searches and one request out."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.request_logs import RequestLogFilter, RequestLogRepository


def _row(request_id: str, user_id: str, model: str, at: float) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "user_id": user_id,
        "model": model,
        "created_at": at,
        "status": "ok",
        "http_status": 200,
        "stream": 0,
        "request_body": f'{{"model":"{model}"}}',
        "response_body": "{}",
        "request_bytes": 10**7,  # past 2**31 once summed: BigInteger
        "response_bytes": 2,
        "truncated": 1,
    }


async def test_search_filters_pages_and_reads_one(engine: AsyncEngine) -> None:
    repo = RequestLogRepository(engine)
    await repo.insert([])
    await repo.insert(
        [
            _row("r1", "ann", "m1", 100.0),
            _row("r2", "ann", "m2", 200.0),
            _row("r3", "bob", "m1", 300.0),
            _row("r3", "bob", "m1", 301.0),  # the same id logged twice: the latest is read
        ]
    )
    everything = await repo.search(RequestLogFilter(), 10, None)
    assert [r["request_id"] for r in everything] == ["r3", "r3", "r2", "r1"]
    assert "request_body" not in everything[0]
    by = {
        RequestLogFilter(user_id="ann"): ["r2", "r1"],
        RequestLogFilter(model="m1"): ["r3", "r3", "r1"],
        RequestLogFilter(request_id="r2"): ["r2"],
        RequestLogFilter(since=200.0, until=301.0): ["r3", "r2"],
    }
    for flt, expected in by.items():
        assert [r["request_id"] for r in await repo.search(flt, 10, None)] == expected
    page = await repo.search(RequestLogFilter(), 2, None)
    rest = await repo.search(RequestLogFilter(), 10, page[-1]["id"])
    assert [r["request_id"] for r in rest] == ["r2", "r1"]
    one = await repo.of_request("r3")
    assert (
        one is not None and one["created_at"] == 301.0 and one["request_body"] == '{"model":"m1"}'
    )
    assert await repo.of_request("nope") is None
