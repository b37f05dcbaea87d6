"""``lowart deployments``: list, add, change and remove a model's further deployments, through
the admin API's operations (``api/admin_deployments.py``) and its validation (``api/bodies.py``;
docs/api.md, "Deployments"). A vendor key is encrypted on the way in and never printed; live
health is this process's own, so it is left out here (the admin API shows the gateway's)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lowart.api.bodies import DeploymentCreate, DeploymentUpdate, convert
from lowart.cli.command import Commands, admin, chosen, command, group
from lowart.cli.models import api_key_of, json_object
from lowart.cli.output import emit_record, emit_rows
from lowart.providers.registry import VendorTable
from lowart.settings import Settings
from lowart.storage.audit_states import DEPLOYMENT, deployment_target
from lowart.storage.audit_trail import CLI

COLUMNS = ("id", "vendor_type", "base_url", "weight", "enabled", "rpm_cap", "tpm_cap")


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != "health"}


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    return chosen(
        {
            "vendor_type": args.vendor,
            "base_url": args.base_url,
            "api_key": api_key_of(args),
            "upstream_model": args.upstream_model,
            "params": args.params,
            "weight": args.weight,
            "rpm_cap": args.rpm_cap,
            "tpm_cap": args.tpm_cap,
            "enabled": args.enabled,
        }
    )


async def _list(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        listing = await ops.deployments.listing(args.model_id)
    emit_rows([_shown(d) for d in listing["data"]], COLUMNS, args.json)


async def _add(settings: Settings, args: argparse.Namespace) -> None:
    body = convert({"id": args.deployment_id, **_fields(args)}, DeploymentCreate)
    target = deployment_target(args.model_id, args.deployment_id)
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "deployments.create", DEPLOYMENT, target):
            row = await ops.deployments.add(args.model_id, body)
        emit_record(_shown(ops.deployments.deployment_json(row)), args.json)


async def _set(settings: Settings, args: argparse.Namespace) -> None:
    body = convert(_fields(args), DeploymentUpdate)
    target = deployment_target(args.model_id, args.deployment_id)
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "deployments.update", DEPLOYMENT, target):
            row = await ops.deployments.change(args.model_id, args.deployment_id, body)
        emit_record(_shown(ops.deployments.deployment_json(row)), args.json)


async def _remove(settings: Settings, args: argparse.Namespace) -> None:
    target = deployment_target(args.model_id, args.deployment_id)
    async with (
        admin(settings) as ops,
        ops.audit.write(CLI, "deployments.delete", DEPLOYMENT, target),
    ):
        await ops.deployments.remove(args.model_id, args.deployment_id)
    emit_record({"model_id": args.model_id, "id": args.deployment_id, "deleted": True}, args.json)


def _which(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model_id", help="the model whose deployment it is")
    parser.add_argument("deployment_id", help="the deployment's id ('default' is the model's own)")
    return parser


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weight", type=float, help="its share of the traffic (weighted)")
    parser.add_argument("--rpm-cap", type=int, help="requests per minute it may take")
    parser.add_argument("--tpm-cap", type=int, help="tokens per minute it may take")
    parser.add_argument(
        "--enabled", action=argparse.BooleanOptionalAction, help="routed to, or not (--no-enabled)"
    )


def _upstream(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument(
        "--vendor", required=adding, help="the vendor: " + ", ".join(VendorTable().names())
    )
    parser.add_argument("--base-url", help="the upstream's URL (the vendor's default if left out)")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="the vendor key (shows in `ps`: prefer --api-key-file)")
    key.add_argument("--api-key-file", type=Path, help="a file holding the vendor key")
    parser.add_argument("--upstream-model", help="the model name sent upstream, if another")
    parser.add_argument("--params", type=json_object, help="deployment parameters, JSON")


def register(commands: Commands) -> None:
    deployments = group(
        commands, "deployments", "manage a model's further deployments (live health: admin API)"
    )
    listed = command(deployments, "list", "list a model's deployments, its own first", _list)
    listed.add_argument("model_id", help="the model whose deployments to list")
    add = _which(command(deployments, "add", "add a deployment to a model", _add))
    _upstream(add, adding=True)
    _settings(add)
    change = _which(
        command(deployments, "set", "change a deployment's upstream, weight, caps or state", _set)
    )
    _upstream(change, adding=False)
    _settings(change)
    _which(command(deployments, "remove", "delete a deployment", _remove))
