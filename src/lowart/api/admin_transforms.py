"""Admin routes for transform scripts (docs/transforms.md): register, list, change, delete, and
try one on a sample body. Every script is loaded in a worker before it is stored; each write,
and each trial (it runs the admin's code in a worker), leaves an audit row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, Call, in_path
from lowart.api.bodies import TransformCreate, TransformTrial, TransformUpdate, decode, given
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.errors import Conflict, InvalidRequest, NotFound
from lowart.storage.audit_states import TRANSFORM
from lowart.storage.models import ModelRepository
from lowart.storage.rows import TransformRow, iso
from lowart.storage.transforms import TransformRepository
from lowart.transforms.runner import ENTRY_POINTS, Context, Transforms

Refresh = Callable[[], Awaitable[None]]
MAX_ID_DIGITS = 18


def transform_json(row: TransformRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "model_id": row.model_id,
        "deployment": row.deployment,
        "source": row.source,
        "on_request": row.on_request,
        "on_response": row.on_response,
        "on_chunk": row.on_chunk,
        "on_error": row.on_error,
        "enabled": row.enabled,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _new_id(call: Call) -> str | None:
    """A registered script's id, from the answer (the audit's target)."""
    value = call.answer.get("id") if call.answer is not None else None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _entries(fields: dict[str, Any]) -> list[str]:
    entries = [name for name in ENTRY_POINTS if fields[name]]
    if not entries:
        raise InvalidRequest("Turn on at least one entry point.", param="on_request")
    return entries


class TransformAdmin:
    """The ``transforms`` rows, each validated in a worker under the scripts' own limits."""

    def __init__(
        self,
        repo: TransformRepository,
        models: ModelRepository,
        transforms: Transforms,
        refresh: Refresh,
        audit: AuditRecorder,
    ) -> None:
        self._repo = repo
        self._audit = audit
        self._models = models
        self._transforms = transforms
        self._refresh = refresh

    async def _row(self, request: Request) -> TransformRow:
        raw = request.path_params["transform_id"]
        row = None
        if raw.isdigit() and len(raw) <= MAX_ID_DIGITS:
            row = await self._repo.get(int(raw))
        if row is None:
            raise NotFound(f"No transform '{raw}'.")
        return row

    async def _check(self, fields: dict[str, Any], own_id: int | None) -> None:
        """The model exists, holds no other enabled script, and the source loads."""
        model_id = fields["model_id"]
        if model_id is not None and await self._models.get(model_id) is None:
            raise InvalidRequest(f"Unknown model '{model_id}'.", param="model_id")
        if fields["enabled"]:
            for other in await self._repo.list_transforms():
                same = other.model_id == model_id and other.deployment is None
                if same and other.enabled and other.id != own_id:
                    raise Conflict(f"Transform {other.id} already runs for this model.")
        await self._transforms.validate(fields["source"], _entries(fields))

    async def create(self, request: Request) -> JSON:
        fields = given(decode(await body_of(request), TransformCreate))
        await self._check(fields, None)
        row = await self._repo.create(fields)
        await self._refresh()
        return JSON(transform_json(row), status_code=201)

    async def list_transforms(self, request: Request) -> JSON:
        return JSON({"data": [transform_json(r) for r in await self._repo.list_transforms()]})

    async def get(self, request: Request) -> JSON:
        return JSON(transform_json(await self._row(request)))

    async def patch(self, request: Request) -> JSON:
        current = await self._row(request)
        changes = given(decode(await body_of(request), TransformUpdate))
        merged = {**transform_json(current), **changes}
        await self._check(merged, current.id)
        row = await self._repo.update(current.id, changes)
        if row is None:
            raise NotFound(f"No transform '{current.id}'.")
        await self._refresh()
        return JSON(transform_json(row))

    async def delete(self, request: Request) -> JSON:
        row = await self._row(request)
        if not await self._repo.delete(row.id):
            raise NotFound(f"No transform '{row.id}'.")
        await self._refresh()
        return JSON({"id": row.id, "deleted": True})

    async def trial(self, request: Request) -> JSON:
        """Run one entry point on a sample body (the stored source, or an unsaved edit)."""
        row = await self._row(request)
        body = decode(await body_of(request), TransformTrial)
        source = body.source if isinstance(body.source, str) else row.source
        ctx = Context("test-user", row.model_id or "test-model", "test-request", body.format)
        reply = await self._transforms.trial(source, body.entry, body.body, ctx)
        return JSON(
            {
                "entry": body.entry,
                "outcome": reply.status,
                "result": reply.value,
                "message": reply.message or None,
            }
        )

    def routes(self) -> list[Route]:
        audited, one = self._audit.audited, in_path("transform_id")
        return [
            route(
                "/admin/transforms",
                POST=audited("transforms.create", TRANSFORM, self.create, _new_id),
                GET=self.list_transforms,
            ),
            route(
                "/admin/transforms/{transform_id}",
                GET=self.get,
                PATCH=audited("transforms.update", TRANSFORM, self.patch, one),
                DELETE=audited("transforms.delete", TRANSFORM, self.delete, one),
            ),
            route(
                "/admin/transforms/{transform_id}/test",
                POST=audited("transforms.test", TRANSFORM, self.trial, one),
            ),
        ]
