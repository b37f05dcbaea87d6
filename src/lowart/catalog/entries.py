"""Rows made routable: a model's own columns and its ``deployments`` rows as ``ModelEntry``s,
their keys decrypted and their access checked once, when the directory loads a snapshot
(docs/api.md, "Deployments")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from lowart.errors import InvalidRequest
from lowart.model_entry import (
    Access,
    ModelEntry,
    OperationKind,
    Routing,
    Strategy,
    access_of,
    kinds_of,
    timeouts_of,
)
from lowart.money import Price
from lowart.security.secretbox import SecretDecryptError
from lowart.storage.rows import DeploymentRow, ModelRow
from lowart.storage.sealed import deployment_key_context, vendor_key_context

log = structlog.get_logger()

Decrypt = Callable[[str, str], str]
Vendors = Mapping[str, frozenset[OperationKind]]  # what each known vendor serves, by lower-case key


def _secret(
    stored: str | None, context: str, decrypt: Decrypt, where: str
) -> tuple[bool, str | None]:
    """(opened, the plain key or None for none); not opened: logged."""
    try:
        return True, decrypt(stored, context) if stored else None
    except SecretDecryptError:
        log.error("model_api_key_undecryptable", model_id=where)
        return False, None


def _access(params: dict[str, Any], where: str) -> Access | None:
    try:
        return access_of(params)  # checked on registration; a row edited by hand may fail
    except InvalidRequest as exc:
        log.error("model_params_invalid", model_id=where, param=exc.param)
        return None


def _kinds(
    params: dict[str, Any], served: frozenset[OperationKind], where: str
) -> frozenset[OperationKind] | None:
    try:
        return kinds_of(params, served)  # checked on registration, like ``_access``
    except InvalidRequest as exc:
        log.error("model_params_invalid", model_id=where, param=exc.param)
        return None


def _cap(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return int(value) if ok and isinstance(value, int) else None


def _weight(value: object) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok and isinstance(value, int | float) else 1.0


def model_entry(
    row: ModelRow, decrypt: Decrypt, vendors: Vendors, prices: tuple[Price, ...] = ()
) -> ModelEntry | None:
    """A model's own columns, its ``default`` deployment (``prices``: the model's, which every
    deployment shares); None when it cannot be routed."""
    vendor = row.vendor_type.strip().lower()
    operations = vendors.get(vendor)
    if operations is None:
        log.warning("model_vendor_unknown", model_id=row.model_id, vendor_type=row.vendor_type)
        return None
    opened, api_key = _secret(row.api_key, vendor_key_context(row.model_id), decrypt, row.model_id)
    access = _access(row.params, row.model_id)
    operations = _kinds(row.params, operations, row.model_id)
    if not opened or access is None or operations is None:
        return None
    return ModelEntry(
        model_id=row.model_id,
        vendor=vendor,
        base_url=row.base_url.rstrip("/"),
        api_key=api_key,
        upstream_model=row.upstream_model or row.model_id,
        params=row.params,
        timeouts=timeouts_of(row.params, row.timeout_s),
        enabled=row.enabled,
        created=int(row.created_at.replace(tzinfo=dt.UTC).timestamp()) if row.created_at else 0,
        operations=operations,
        access=access,
        prices=prices,
        weight=_weight(row.params.get("weight")),
        rpm_cap=_cap(row.params.get("rpm_cap")),
        tpm_cap=_cap(row.params.get("tpm_cap")),
    )


def deployment_entry(
    model: ModelEntry, row: DeploymentRow, decrypt: Decrypt, vendors: Vendors
) -> ModelEntry | None:
    """A further deployment of ``model``: its own upstream, the model's id, kinds and total
    timeout. None (logged) when it cannot serve what the model serves."""
    where = f"{row.model_id}/{row.id}"
    vendor = row.vendor_type.strip().lower()
    if not model.operations <= vendors.get(vendor, frozenset()):
        log.warning("deployment_vendor_unfit", model_id=where, vendor_type=row.vendor_type)
        return None
    context = deployment_key_context(row.model_id, row.id)
    opened, api_key = _secret(row.api_key, context, decrypt, where)
    access = _access(row.params, where)
    if not opened or access is None:
        return None
    return replace(
        model,
        vendor=vendor,
        base_url=row.base_url.rstrip("/"),
        api_key=api_key,
        upstream_model=row.upstream_model or model.upstream_model,
        params=row.params,
        timeouts=timeouts_of(row.params, model.timeouts.total),
        access=access,
        deployment=row.id,
        health_key=where,
        weight=row.weight,
        rpm_cap=row.rpm_cap,
        tpm_cap=row.tpm_cap,
    )


def strategy_of(params: dict[str, Any]) -> Strategy:
    """``params.strategy``: one of ``Strategy``, ``weighted`` when absent or unknown."""
    try:
        return Strategy(params.get("strategy", Strategy.WEIGHTED))
    except ValueError:
        return Strategy.WEIGHTED


def with_deployments(
    model: ModelEntry, rows: Sequence[DeploymentRow], decrypt: Decrypt, vendors: Vendors
) -> ModelEntry:
    """The model with its enabled deployments attached; as it was when it has none."""
    further = [deployment_entry(model, row, decrypt, vendors) for row in rows if row.enabled]
    pool = (model, *(d for d in further if d is not None))
    if len(pool) == 1:
        return model
    pooled = tuple(replace(d, pooled=True) for d in pool)
    routing = Routing(strategy_of(model.params), model.params.get("sticky") is True, pooled)
    return replace(model, routing=routing)


def check_routing_params(params: object) -> None:
    """Refuse a model's ``strategy``, ``sticky``, ``weight``, ``rpm_cap`` or ``tpm_cap`` param
    that routing would not understand (400 naming it)."""
    if not isinstance(params, dict):
        return
    if "strategy" in params and params["strategy"] not in tuple(Strategy):
        names = ", ".join(Strategy)
        raise InvalidRequest(f"params.strategy must be one of {names}.", param="params.strategy")
    if "sticky" in params and not isinstance(params["sticky"], bool):
        raise InvalidRequest("params.sticky must be true or false.", param="params.sticky")
    if "weight" in params and _weight(params["weight"]) != params["weight"]:
        raise InvalidRequest("params.weight must be a number, 0 or more.", param="params.weight")
    for name in ("rpm_cap", "tpm_cap"):
        if params.get(name) is not None and _cap(params[name]) is None:
            raise InvalidRequest(
                f"params.{name} must be a positive integer.", param=f"params.{name}"
            )
