"""Admin routes for a model's deployments and their live health (docs/api.md, "Deployments")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.bodies import DeploymentCreate, DeploymentUpdate, decode, given
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.catalog.circuit import Circuits
from lowart.catalog.entries import strategy_of
from lowart.dispatch.health import DeploymentHealth
from lowart.errors import Conflict, InvalidRequest, NotFound
from lowart.model_entry import DEFAULT_DEPLOYMENT
from lowart.providers.registry import VendorTable
from lowart.security.secretbox import SecretBox, SecretDecryptError
from lowart.security.ssrf import DestinationPolicy
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.models import ModelRepository
from lowart.storage.rows import DeploymentRow, ModelRow, iso
from lowart.storage.sealed import deployment_key_context, vendor_key_context

Refresh = Callable[[], Awaitable[None]]


class DeploymentAdmin:
    """Deployments, whose vendor keys are encrypted on the way in and never shown again."""

    def __init__(
        self,
        *,
        models: ModelRepository,
        deployments: DeploymentRepository,
        box: SecretBox,
        refresh: Refresh,
        destinations: DestinationPolicy,
        vendors: VendorTable,
        circuits: Circuits,
        health: DeploymentHealth,
    ) -> None:
        self._models = models
        self._deployments = deployments
        self._box = box
        self._refresh = refresh
        self._destinations = destinations
        self._vendors = vendors
        self._circuits = circuits
        self._health = health

    def _last4(self, stored: str | None, context: str) -> str | None:
        try:
            return self._box.decrypt(stored, context)[-4:] if stored else None
        except SecretDecryptError:
            return None

    def _live(self, key: str) -> dict[str, Any]:
        """This instance's view: the circuit's state (``cooling`` after a 429), in flight..."""
        report = self._health.report(key)
        state = "cooling" if report["cooling_s"] else self._circuits.state(key)
        return {"state": state, **report}

    def _json(self, row: DeploymentRow) -> dict[str, Any]:
        context = deployment_key_context(row.model_id, row.id)
        return {
            "id": row.id,
            "vendor_type": self._vendors.spelling(row.vendor_type),
            "base_url": row.base_url,
            "upstream_model": row.upstream_model,
            "params": row.params,
            "weight": row.weight,
            "enabled": row.enabled,
            "rpm_cap": row.rpm_cap,
            "tpm_cap": row.tpm_cap,
            "api_key_set": bool(row.api_key),
            "api_key_last4": self._last4(row.api_key, context),
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            "health": self._live(f"{row.model_id}/{row.id}"),
        }

    def _default_json(self, model: ModelRow) -> dict[str, Any]:
        """The model's own columns, shown as its ``default`` deployment (edited as the model)."""
        params = model.params
        return {
            "id": DEFAULT_DEPLOYMENT,
            "vendor_type": self._vendors.spelling(model.vendor_type),
            "base_url": model.base_url,
            "upstream_model": model.upstream_model,
            "params": params,
            "weight": params.get("weight", 1.0),
            "enabled": model.enabled,
            "rpm_cap": params.get("rpm_cap"),
            "tpm_cap": params.get("tpm_cap"),
            "api_key_set": bool(model.api_key),
            "api_key_last4": self._last4(model.api_key, vendor_key_context(model.model_id)),
            "created_at": iso(model.created_at),
            "updated_at": iso(model.updated_at),
            "health": self._live(model.model_id),
        }

    async def _model(self, request: Request) -> ModelRow:
        model_id = request.path_params["model_id"]
        row = await self._models.get(model_id)
        if row is None:
            raise NotFound(f"No model '{model_id}'.")
        return row

    async def _row(self, request: Request) -> DeploymentRow:
        model = await self._model(request)
        deployment_id = request.path_params["deployment_id"]
        row = await self._deployments.get(model.model_id, deployment_id)
        if row is None:
            raise NotFound(f"No deployment '{deployment_id}' of model '{model.model_id}'.")
        return row

    async def _prepare(self, model_id: str, deployment_id: str, fields: dict[str, Any]) -> None:
        """Check the vendor, ``base_url`` and ``params``; seal the key (in place)."""
        vendor = self._vendors.vendor(fields["vendor_type"])
        fields["vendor_type"] = vendor.name
        fields["base_url"] = await vendor.check_base_url(fields["base_url"], self._destinations)
        vendor.check_params(fields.get("params"))
        if fields.get("api_key") is not None:
            context = deployment_key_context(model_id, deployment_id)
            fields["api_key"] = self._box.encrypt(fields["api_key"], context)

    async def list_deployments(self, request: Request) -> JSON:
        model = await self._model(request)
        rows = await self._deployments.list_for(model.model_id)
        return JSON(
            {
                "model_id": model.model_id,
                "strategy": strategy_of(model.params).value,
                "sticky": model.params.get("sticky") is True,
                "data": [self._default_json(model), *(self._json(row) for row in rows)],
            }
        )

    async def create(self, request: Request) -> JSON:
        model = await self._model(request)
        fields = given(decode(await body_of(request), DeploymentCreate))
        deployment_id = fields.pop("id")
        if deployment_id == DEFAULT_DEPLOYMENT:
            raise InvalidRequest(
                "The default deployment is the model's own; edit it as the model.", param="id"
            )
        fields.setdefault("base_url", "")
        await self._prepare(model.model_id, deployment_id, fields)
        row = await self._deployments.create(model.model_id, deployment_id, fields)
        if row is None:
            raise Conflict(f"Model '{model.model_id}' has a deployment '{deployment_id}' already.")
        await self._refresh()
        return JSON(self._json(row), status_code=201)

    async def get(self, request: Request) -> JSON:
        return JSON(self._json(await self._row(request)))

    async def patch(self, request: Request) -> JSON:
        current = await self._row(request)
        fields = given(decode(await body_of(request), DeploymentUpdate))
        if {"vendor_type", "base_url", "params", "api_key"} & fields.keys():
            fields = {
                "vendor_type": current.vendor_type,
                "base_url": current.base_url,
                "params": current.params,
                **fields,
            }
            await self._prepare(current.model_id, current.id, fields)
        row = await self._deployments.update(current.model_id, current.id, fields)
        if row is None:
            raise NotFound(f"No deployment '{current.id}' of model '{current.model_id}'.")
        await self._refresh()
        return JSON(self._json(row))

    async def delete(self, request: Request) -> JSON:
        row = await self._row(request)
        await self._deployments.delete(row.model_id, row.id)
        await self._refresh()
        return JSON({"model_id": row.model_id, "id": row.id, "deleted": True})

    def routes(self) -> list[Route]:
        return [
            route(
                "/admin/models/{model_id}/deployments",
                GET=self.list_deployments,
                POST=self.create,
            ),
            route(
                "/admin/models/{model_id}/deployments/{deployment_id}",
                GET=self.get,
                PATCH=self.patch,
                DELETE=self.delete,
            ),
        ]
