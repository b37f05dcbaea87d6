"""The ``lowart`` command: one module per command group (docs/operations.md, "The command
line"). A new group is a module with a ``register`` function, added to ``GROUPS``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence

from lowart import __version__
from lowart.cli import backup, db, deployments, doctor, keys, models, server, teams, usage, users
from lowart.cli.command import Group
from lowart.errors import LowartError, StartupError
from lowart.settings import Settings
from lowart.telemetry.logging import configure_logging

GROUPS: tuple[Group, ...] = (
    server,
    users,
    keys,
    teams,
    models,
    deployments,
    usage,
    db,
    backup,
    doctor,
)
ERROR = 2


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    root = argparse.ArgumentParser(prog="lowart", description="Lowart LLM API gateway")
    root.add_argument("--version", action="version", version=f"lowart {__version__}")
    commands = root.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command to run"
    )
    for group in GROUPS:
        group.register(commands)
    return root


def _quiet_alembic(level: str) -> None:
    """A command's output is its own: alembic's INFO lines (one per migration) stay out unless
    LOG_LEVEL is debug."""
    if level.lower() != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)


def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Parse arguments and run one command with the settings of ``env`` (the environment if
    None); returns the exit code."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse's usage errors, --help and --version
        return exc.code if isinstance(exc.code, int) else ERROR
    try:
        settings = Settings.from_env(env)
        configure_logging(settings.log.level, settings.log.format)
        blocking = getattr(args, "blocking", None)
        if blocking is not None:
            return int(blocking(settings, args))
        _quiet_alembic(settings.log.level)
        return asyncio.run(args.handler(settings, args)) or 0
    except (StartupError, LowartError) as exc:
        sys.stderr.write(f"lowart: error: {exc}\n")
        return ERROR


def main() -> None:
    """Console script entry point."""
    sys.exit(run())
