"""Jobs: ``GET /v1/jobs``, ``GET /v1/jobs/{job_id}``, ``POST /v1/jobs/{job_id}/cancel``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.routing import Route

from lowart.api.responses import JSON, caller
from lowart.api.routing import route
from lowart.errors import InvalidRequest, NotFound
from lowart.jobs.service import JobService
from lowart.storage.jobs import JobRow

ID_PATTERN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
MAX_PAGE = 100


def valid_id(value: str) -> bool:
    """Ids are opaque: 1 to 64 characters of ``[A-Za-z0-9_-]``, never a path."""
    return 0 < len(value) <= 64 and set(value) <= ID_PATTERN_CHARS


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def job_json(job: JobRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": job.job_id,
        "object": "job",
        "status": job.status,
        "progress": round(job.progress, 4),
        "model": job.model,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "result": msgspec.json.decode(job.result) if job.result else None,
        "error": job.error,
    }
    if job.status == "require_confirmation":
        body["session_id"] = job.session_id
    return body


class JobRoutes:
    """Only the owner sees a job; anyone else gets 404."""

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def _id(self, request: Request) -> str:
        job_id = str(request.path_params["job_id"])
        if not valid_id(job_id):
            raise NotFound(f"No job '{job_id[:64]}'.")
        return job_id

    async def get(self, request: Request) -> JSON:
        return JSON(job_json(await self._jobs.get(caller(request), self._id(request))))

    async def list_jobs(self, request: Request) -> JSON:
        raw = request.query_params.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}.", param="limit")
        limit = int(raw)
        after = request.query_params.get("after") or None
        page = await self._jobs.list_jobs(caller(request), limit + 1, after)
        data = [job_json(j) for j in page[:limit]]
        return JSON(
            {
                "object": "list",
                "data": data,
                "has_more": len(page) > limit,
                "first_id": data[0]["job_id"] if data else None,
                "last_id": data[-1]["job_id"] if data else None,
            }
        )

    async def cancel(self, request: Request) -> JSON:
        return JSON(job_json(await self._jobs.cancel(caller(request), self._id(request))))

    def routes(self) -> list[Route]:
        return [
            route("/v1/jobs", GET=self.list_jobs),
            route("/v1/jobs/{job_id}", GET=self.get),
            route("/v1/jobs/{job_id}/cancel", POST=self.cancel),
        ]
