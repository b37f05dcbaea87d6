"""Admin routes for a model's deployments and their live health (docs/api.md, "Deployments")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, Call, Target
from lowart.api.bodies import DeploymentCreate, DeploymentUpdate, decode, given
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.catalog.circuit import Circuits
from lowart.catalog.entries import strategy_of
from lowart.dispatch.health import DeploymentHealth
from lowart.errors import Conflict, InvalidRequest, NotFound
from lowart.model_entry import DEFAULT_DEPLOYMENT, kinds_of
from lowart.providers.registry import VendorTable
from lowart.security.secretbox import SecretBox, SecretDecryptError
from lowart.security.ssrf import DestinationPolicy
from lowart.storage.audit_states import DEPLOYMENT, deployment_target
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.models import ModelRepository
from lowart.storage.rows import DeploymentRow, ModelRow, iso
from lowart.storage.sealed import deployment_key_context, vendor_key_context

Refresh = Callable[[], Awaitable[None]]


def _target(source: str) -> Target:
    """A deployment's id in the audit log, ``<model>/<deployment>``: the deployment's id from
    the path (``path``) or the body sent (``body``)."""

    def target(call: Call) -> str | None:
        given_id = call.path.get("deployment_id") if source == "path" else call.body.get("id")
        if not isinstance(given_id, str) or not given_id:
            return None
        return deployment_target(call.path["model_id"], given_id)

    return target


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
        audit: AuditRecorder,
    ) -> None:
        self._models = models
        self._audit = audit
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

    def deployment_json(self, row: DeploymentRow) -> dict[str, Any]:
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

    async def model(self, model_id: str) -> ModelRow:
        row = await self._models.get(model_id)
        if row is None:
            raise NotFound(f"No model '{model_id}'.")
        return row

    async def deployment(self, model_id: str, deployment_id: str) -> DeploymentRow:
        model = await self.model(model_id)
        row = await self._deployments.get(model.model_id, deployment_id)
        if row is None:
            raise NotFound(f"No deployment '{deployment_id}' of model '{model.model_id}'.")
        return row

    async def _prepare(self, model: ModelRow, deployment_id: str, fields: dict[str, Any]) -> None:
        """Check the vendor (it must serve what the model serves), ``base_url`` and ``params``;
        seal the key (in place)."""
        vendor = self._vendors.vendor(fields["vendor_type"])
        own = self._vendors.find(model.vendor_type)
        if own is not None and not kinds_of(model.params, own.operations) <= vendor.operations:
            raise InvalidRequest(
                f"A {vendor.name} deployment cannot serve what model '{model.model_id}' serves.",
                param="vendor_type",
            )
        fields["vendor_type"] = vendor.name
        fields["base_url"] = await vendor.check_base_url(fields["base_url"], self._destinations)
        vendor.check_params(fields.get("params"))
        if fields.get("api_key") is not None:
            context = deployment_key_context(model.model_id, deployment_id)
            fields["api_key"] = self._box.encrypt(fields["api_key"], context)

    # The operations, shared by the routes below and the ``lowart`` command line.

    async def listing(self, model_id: str) -> dict[str, Any]:
        """A model's deployments, its own (``default``) first, each with its live health."""
        model = await self.model(model_id)
        rows = await self._deployments.list_for(model.model_id)
        return {
            "model_id": model.model_id,
            "strategy": strategy_of(model.params).value,
            "sticky": model.params.get("sticky") is True,
            "data": [self._default_json(model), *(self.deployment_json(row) for row in rows)],
        }

    async def add(self, model_id: str, body: DeploymentCreate) -> DeploymentRow:
        model = await self.model(model_id)
        fields = given(body)
        deployment_id = fields.pop("id")
        if deployment_id == DEFAULT_DEPLOYMENT:
            raise InvalidRequest(
                "The default deployment is the model's own; edit it as the model.", param="id"
            )
        fields.setdefault("base_url", "")
        await self._prepare(model, deployment_id, fields)
        row = await self._deployments.create(model.model_id, deployment_id, fields)
        if row is None:
            raise Conflict(f"Model '{model.model_id}' has a deployment '{deployment_id}' already.")
        await self._refresh()
        return row

    async def change(
        self, model_id: str, deployment_id: str, body: DeploymentUpdate
    ) -> DeploymentRow:
        current = await self.deployment(model_id, deployment_id)
        fields = given(body)
        if {"vendor_type", "base_url", "params", "api_key"} & fields.keys():
            fields = {
                "vendor_type": current.vendor_type,
                "base_url": current.base_url,
                "params": current.params,
                **fields,
            }
            await self._prepare(await self.model(model_id), current.id, fields)
        row = await self._deployments.update(current.model_id, current.id, fields)
        if row is None:
            raise NotFound(f"No deployment '{current.id}' of model '{current.model_id}'.")
        await self._refresh()
        return row

    async def remove(self, model_id: str, deployment_id: str) -> None:
        row = await self.deployment(model_id, deployment_id)
        await self._deployments.delete(row.model_id, row.id)
        await self._refresh()

    # The routes.

    async def list_deployments(self, request: Request) -> JSON:
        return JSON(await self.listing(request.path_params["model_id"]))

    async def create(self, request: Request) -> JSON:
        body = decode(await body_of(request), DeploymentCreate)
        row = await self.add(request.path_params["model_id"], body)
        return JSON(self.deployment_json(row), status_code=201)

    async def get(self, request: Request) -> JSON:
        p = request.path_params
        return JSON(self.deployment_json(await self.deployment(p["model_id"], p["deployment_id"])))

    async def patch(self, request: Request) -> JSON:
        body = decode(await body_of(request), DeploymentUpdate)
        p = request.path_params
        row = await self.change(p["model_id"], p["deployment_id"], body)
        return JSON(self.deployment_json(row))

    async def delete(self, request: Request) -> JSON:
        p = request.path_params
        await self.remove(p["model_id"], p["deployment_id"])
        return JSON({"model_id": p["model_id"], "id": p["deployment_id"], "deleted": True})

    def routes(self) -> list[Route]:
        audited, one = self._audit.audited, _target("path")
        return [
            route(
                "/admin/models/{model_id}/deployments",
                GET=self.list_deployments,
                POST=audited("deployments.create", DEPLOYMENT, self.create, _target("body")),
            ),
            route(
                "/admin/models/{model_id}/deployments/{deployment_id}",
                GET=self.get,
                PATCH=audited("deployments.update", DEPLOYMENT, self.patch, one),
                DELETE=audited("deployments.delete", DEPLOYMENT, self.delete, one),
            ),
        ]
