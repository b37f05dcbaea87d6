"""What every command module shares: how a command is declared (a module per group, with a
``register`` function; docs/operations.md, "The command line"), the ``--json`` option, and the
services a command runs on."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from lowart.app import AdminOperations, admin_operations, announce_admin_key, start_services
from lowart.services import Services
from lowart.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], Awaitable[int | None]]
Blocking = Callable[[Settings, argparse.Namespace], int]
Commands = Any  # argparse's private _SubParsersAction: what add_subparsers returns
UNLIMITED = "none"  # a limit option's value for no limit

JSON_OPTION = argparse.ArgumentParser(add_help=False)
JSON_OPTION.add_argument(
    "--json", action="store_true", help="print JSON for scripts instead of a table"
)


class Group(Protocol):
    """A command module: ``register`` adds its commands to the ``lowart`` parser."""

    def register(self, commands: Commands) -> None: ...


def group(commands: Commands, name: str, help_text: str) -> Commands:
    """A command group (``lowart NAME ACTION``); returns where its actions are added."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")


def command(
    commands: Commands, name: str, help_text: str, handler: Handler
) -> argparse.ArgumentParser:
    """One command running the coroutine ``handler``; it takes ``--json``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, parents=[JSON_OPTION]
    )
    parser.set_defaults(handler=handler)
    return parser


def blocking(
    commands: Commands, name: str, help_text: str, handler: Blocking
) -> argparse.ArgumentParser:
    """One command running ``handler``, which runs an event loop of its own (a server)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    parser.set_defaults(blocking=handler)
    return parser


def limit(value: str) -> int | str:
    """A limit option: a count, or ``none`` for no limit."""
    if value.strip().lower() == UNLIMITED:
        return UNLIMITED
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a count of 0 or more, or none: {value!r}")
    return count


def chosen(options: dict[str, Any]) -> dict[str, Any]:
    """Only the options given (an option left out never changes a field); ``none`` is null."""
    return {
        name: None if value == UNLIMITED else value
        for name, value in options.items()
        if value is not None
    }


@asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The gateway's services on its database (migrated and bootstrapped, as ``serve`` does)."""
    built, admin_key = await start_services(settings)
    if admin_key is not None:  # stderr: the command's own output stays machine-readable
        announce_admin_key(admin_key, sys.stderr)
    try:
        yield built
    finally:
        await built.close()


@asynccontextmanager
async def admin(settings: Settings) -> AsyncIterator[AdminOperations]:
    """The admin API's operations, the same objects its routes call."""
    async with services(settings) as built:
        yield admin_operations(built)
