"""The ``lowart`` command line's declarations: every option and argument says what it is for,
and every command but the servers prints ``--json`` for scripts."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from lowart.cli import parser

SERVERS = {"lowart serve", "lowart mock-upstream"}  # they print nothing to parse


def _commands(
    node: argparse.ArgumentParser,
) -> Iterator[argparse.ArgumentParser]:
    yield node
    for action in node._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _commands(child)


def test_every_option_has_help_and_every_command_json() -> None:
    commands = list(_commands(parser()))
    leaves = [
        c
        for c in commands
        if not any(isinstance(a, argparse._SubParsersAction) for a in c._actions)
    ]
    assert {c.prog for c in leaves} >= {
        "lowart users create", "lowart users disable", "lowart users show", "lowart keys revoke",
        "lowart models fallbacks", "lowart usage", "lowart backup", "lowart doctor",
    }  # fmt: skip
    for command in commands:
        assert command.description, command.prog
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (command.prog, action.dest)
    for command in leaves:
        flags = {flag for action in command._actions for flag in action.option_strings}
        assert ("--json" in flags) == (command.prog not in SERVERS), command.prog
