"""Admin routes for models and their fallback chains."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, in_body, in_path
from lowart.api.admin_prices import pricing_json
from lowart.api.bodies import Fallbacks, ModelCreate, ModelUpdate, decode, given
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.catalog.entries import check_routing_params
from lowart.errors import Conflict, InvalidRequest, NotFound
from lowart.money import Price
from lowart.providers.registry import VendorTable
from lowart.providers.vendor import Vendor
from lowart.security.secretbox import SecretBox, SecretDecryptError
from lowart.security.ssrf import DestinationPolicy
from lowart.storage.audit_states import FALLBACKS, MODEL
from lowart.storage.models import ModelRepository
from lowart.storage.prices import PriceRepository
from lowart.storage.rows import ModelRow, iso
from lowart.storage.sealed import vendor_key_context

Refresh = Callable[[], Awaitable[None]]
_DEFAULTS: dict[str, Any] = {
    "base_url": "",
    "api_key": None,
    "upstream_model": None,
    "params": None,
    "timeout_s": 600.0,
    "enabled": True,
}


def _replacing(fields: dict[str, Any]) -> dict[str, Any]:
    """A PUT's fields: the defaults for those left out (the stored vendor key is kept)."""
    if "vendor_type" not in fields:
        raise InvalidRequest(
            "PUT needs vendor_type; use PATCH to change some fields.", param="vendor_type"
        )
    keep_key = "api_key" not in fields
    fields = {**_DEFAULTS, **fields}
    if keep_key:
        del fields["api_key"]
    return fields


class ModelAdmin:
    """Models, whose vendor keys are encrypted on the way in and never shown again."""

    def __init__(
        self,
        models: ModelRepository,
        box: SecretBox,
        refresh: Refresh,
        destinations: DestinationPolicy,
        vendors: VendorTable,
        *,
        audit: AuditRecorder,
        prices: PriceRepository,
    ) -> None:
        self._models = models
        self._audit = audit
        self._prices = prices
        self._box = box
        self._refresh = refresh
        self._destinations = destinations
        self._vendors = vendors

    def model_json(self, row: ModelRow, prices: tuple[Price, ...] = ()) -> dict[str, Any]:
        """A model as the admin API shows it: the vendor key only by its last four characters,
        its prices in effect (``pricing``) from ``prices``, the model's history."""
        last4 = None
        if row.api_key:
            try:
                last4 = self._box.decrypt(row.api_key, vendor_key_context(row.model_id))[-4:]
            except SecretDecryptError:
                last4 = None
        return {
            "model_id": row.model_id,
            "vendor_type": self._vendors.spelling(row.vendor_type),
            "base_url": row.base_url,
            "upstream_model": row.upstream_model,
            "params": row.params,
            "timeout_s": row.timeout_s,
            "enabled": row.enabled,
            "api_key_set": bool(row.api_key),
            "api_key_last4": last4,
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            **pricing_json(prices, time.time()),
        }

    async def _prepare(
        self, model_id: str, fields: dict[str, Any], vendor: Vendor
    ) -> dict[str, Any]:
        if "vendor_type" in fields:
            fields["vendor_type"] = vendor.name
        if "base_url" in fields:
            fields["base_url"] = await vendor.check_base_url(fields["base_url"], self._destinations)
        if fields.get("api_key") is not None:
            fields["api_key"] = self._box.encrypt(fields["api_key"], vendor_key_context(model_id))
        return fields

    # The operations, shared by the routes below and the ``lowart`` command line.

    async def add(self, body: ModelCreate) -> ModelRow:
        fields = given(body)
        model_id = fields.pop("model_id")
        vendor = self._vendors.vendor(body.vendor_type)
        fields.setdefault("base_url", "")
        prepared = await self._prepare(model_id, fields, vendor)
        vendor.check_params(fields.get("params"))
        check_routing_params(fields.get("params"))
        row = await self._models.create(model_id, prepared)
        if row is None:
            raise Conflict(f"Model '{model_id}' already exists; use PUT or PATCH to change it.")
        await self._refresh()
        return row

    async def models(self) -> list[ModelRow]:
        return await self._models.list_models()

    async def model(self, model_id: str) -> ModelRow:
        row = await self._models.get(model_id)
        if row is None:
            raise NotFound(f"No model '{model_id}'.")
        return row

    async def change(self, model_id: str, body: ModelUpdate, *, replace: bool) -> ModelRow:
        """Change the fields given (``replace``: every field, as PUT does)."""
        fields = given(body)
        if fields.pop("model_id", model_id) != model_id:
            raise InvalidRequest("model_id cannot be changed.", param="model_id")
        current = await self.model(model_id)
        if replace:
            fields = _replacing(fields)
        vendor = self._vendors.vendor(fields.get("vendor_type", current.vendor_type))
        if "vendor_type" in fields and "base_url" not in fields:
            fields["base_url"] = current.base_url
        prepared = await self._prepare(model_id, fields, vendor)
        if "vendor_type" in fields or "params" in fields:  # a PATCH of other fields is let be
            vendor.check_params(fields.get("params", current.params))
            check_routing_params(fields.get("params"))
        row = await self._models.update(model_id, prepared)
        if row is None:
            raise NotFound(f"No model '{model_id}'.")
        await self._refresh()
        return row

    async def remove(self, model_id: str) -> None:
        if not await self._models.delete(model_id):
            raise NotFound(f"No model '{model_id}'.")
        await self._refresh()

    async def fallbacks(self, model_id: str) -> list[str]:
        row = await self.model(model_id)
        return [fb.fallback_model_id for fb in await self._models.fallbacks(row.model_id)]

    async def set_fallbacks(self, model_id: str, chain: list[str]) -> None:
        row = await self.model(model_id)
        known = {m.model_id for m in await self._models.list_models()}
        for target in chain:
            if target == row.model_id:
                raise InvalidRequest("A model cannot be its own fallback.", param="fallbacks")
            if target not in known:
                raise InvalidRequest(f"Unknown fallback model '{target}'.", param="fallbacks")
        if len(set(chain)) != len(chain):
            raise InvalidRequest("A fallback is listed twice.", param="fallbacks")
        await self._models.set_fallbacks(row.model_id, chain)
        await self._refresh()

    async def priced_json(self, row: ModelRow) -> dict[str, Any]:
        """``model_json`` with the model's price history read."""
        return self.model_json(row, await self._prices.history(row.model_id))

    # The routes.

    async def create(self, request: Request) -> JSON:
        row = await self.add(decode(await body_of(request), ModelCreate))
        return JSON(self.model_json(row), status_code=201)

    async def list_models(self, request: Request) -> JSON:
        prices = await self._prices.all()
        rows = await self.models()
        return JSON({"data": [self.model_json(m, prices.get(m.model_id, ())) for m in rows]})

    async def get(self, request: Request) -> JSON:
        row = await self.model(request.path_params["model_id"])
        return JSON(await self.priced_json(row))

    async def _update(self, request: Request, replace: bool) -> JSON:
        body = decode(await body_of(request), ModelUpdate)
        row = await self.change(request.path_params["model_id"], body, replace=replace)
        return JSON(await self.priced_json(row))

    async def put(self, request: Request) -> JSON:
        return await self._update(request, replace=True)

    async def patch(self, request: Request) -> JSON:
        return await self._update(request, replace=False)

    async def delete(self, request: Request) -> JSON:
        model_id = request.path_params["model_id"]
        await self.remove(model_id)
        return JSON({"model_id": model_id, "deleted": True})

    async def get_fallbacks(self, request: Request) -> JSON:
        model_id = request.path_params["model_id"]
        chain = await self.fallbacks(model_id)
        return JSON({"model_id": model_id, "fallbacks": chain})

    async def put_fallbacks(self, request: Request) -> JSON:
        body = decode(await body_of(request), Fallbacks)
        model_id = request.path_params["model_id"]
        await self.set_fallbacks(model_id, body.fallbacks)
        return JSON({"model_id": model_id, "fallbacks": body.fallbacks})

    def routes(self) -> list[Route]:
        audited, model = self._audit.audited, in_path("model_id")
        return [
            route(
                "/admin/models",
                POST=audited("models.create", MODEL, self.create, in_body("model_id")),
                GET=self.list_models,
            ),
            route(
                "/admin/models/{model_id}",
                GET=self.get,
                PUT=audited("models.replace", MODEL, self.put, model),
                PATCH=audited("models.update", MODEL, self.patch, model),
                DELETE=audited("models.delete", MODEL, self.delete, model),
            ),
            route(
                "/admin/models/{model_id}/fallbacks",
                GET=self.get_fallbacks,
                PUT=audited("fallbacks.set", FALLBACKS, self.put_fallbacks, model),
            ),
        ]
