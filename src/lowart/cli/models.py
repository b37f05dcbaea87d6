"""``lowart models``: add, edit, disable, list and show models and set their fallback chains,
through the admin API's operations (``api/admin_models.py``) and its validation
(``api/bodies.py``). A vendor key is encrypted on the way in and never printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec

from lowart.api.bodies import ModelCreate, ModelUpdate, convert
from lowart.cli.command import Commands, admin, chosen, command, group
from lowart.cli.output import emit_record, emit_rows
from lowart.errors import InvalidRequest
from lowart.providers.registry import VendorTable
from lowart.settings import Settings
from lowart.storage.audit_states import FALLBACKS, MODEL
from lowart.storage.audit_trail import CLI

COLUMNS = ("model_id", "vendor_type", "base_url", "upstream_model", "enabled", "api_key_set")


def json_object(value: str) -> dict[str, Any]:
    try:
        parsed = msgspec.json.decode(value)
    except msgspec.DecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return parsed


def api_key_of(args: argparse.Namespace) -> str | None:
    if args.api_key_file is None:
        return None if args.api_key is None else str(args.api_key)
    try:
        return str(args.api_key_file.read_text().strip())
    except OSError as exc:
        raise InvalidRequest(f"cannot read {args.api_key_file}: {exc.strerror}") from exc


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    return chosen(
        {
            "vendor_type": args.vendor,
            "base_url": args.base_url,
            "api_key": api_key_of(args),
            "upstream_model": args.upstream_model,
            "params": args.params,
            "timeout_s": args.timeout,
            "enabled": args.enabled,
        }
    )


async def _add(settings: Settings, args: argparse.Namespace) -> None:
    body = convert({"model_id": args.model_id, **_fields(args)}, ModelCreate)
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "models.create", MODEL, args.model_id):
            row = await ops.models.add(body)
        emit_record(ops.models.model_json(row), args.json)


async def _edit(settings: Settings, args: argparse.Namespace) -> None:
    body = convert(_fields(args), ModelUpdate)
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "models.update", MODEL, args.model_id):
            row = await ops.models.change(args.model_id, body, replace=False)
        emit_record(ops.models.model_json(row), args.json)


async def _disable(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "models.update", MODEL, args.model_id):
            disabled = ModelUpdate(enabled=False)
            row = await ops.models.change(args.model_id, disabled, replace=False)
        emit_record(ops.models.model_json(row), args.json)


async def _list(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        rows = [ops.models.model_json(row) for row in await ops.models.models()]
    emit_rows(rows, COLUMNS, args.json)


async def _show(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        row = await ops.models.model(args.model_id)
        emit_record(await ops.models.priced_json(row), args.json)


async def _fallbacks(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        if args.set is not None:
            async with ops.audit.write(CLI, "fallbacks.set", FALLBACKS, args.model_id):
                chain = [m for m in args.set.split(",") if m]
                await ops.models.set_fallbacks(args.model_id, chain)
        chain = await ops.models.fallbacks(args.model_id)
    emit_record({"model_id": args.model_id, "fallbacks": chain}, args.json)


def _options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument("model_id", help="the model's id, as callers name it")
    parser.add_argument(
        "--vendor", required=adding, help="the vendor: " + ", ".join(VendorTable().names())
    )
    parser.add_argument("--base-url", help="the upstream's URL (the vendor's default if left out)")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="the vendor key (shows in `ps`: prefer --api-key-file)")
    key.add_argument("--api-key-file", type=Path, help="a file holding the vendor key")
    parser.add_argument("--upstream-model", help="the model name sent upstream, if another")
    parser.add_argument("--params", type=json_object, help="vendor parameters, a JSON object")
    parser.add_argument("--timeout", type=float, help="seconds an upstream call may take")
    parser.add_argument(
        "--enabled", action=argparse.BooleanOptionalAction, help="served, or not (--no-enabled)"
    )


def register(commands: Commands) -> None:
    models = group(commands, "models", "manage models and their fallbacks")
    _options(command(models, "add", "register a model", _add), adding=True)
    _options(command(models, "edit", "change the given fields of a model", _edit), adding=False)
    disable = command(models, "disable", "stop serving a model (it stays listed)", _disable)
    disable.add_argument("model_id", help="the model's id")
    command(models, "list", "list the models (vendor keys never shown)", _list)
    show = command(models, "show", "show one model", _show)
    show.add_argument("model_id", help="the model's id")
    fallbacks = command(
        models, "fallbacks", "show, or with --set replace, a fallback chain", _fallbacks
    )
    fallbacks.add_argument("model_id", help="the model whose chain it is")
    fallbacks.add_argument(
        "--set", metavar="M1,M2", help="the models to try in order when it fails ('' clears it)"
    )
