"""The shape of an identifier (user, model, MCP server): one rule for the HTTP bodies, the
OpenAPI document and the CLI's arguments (docs/api.md, "Admin: users and keys")."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from lowart.errors import InvalidRequest

# The end of the text in both regex dialects: Python's ``$`` (msgspec validates with ``re``)
# also matches before a final newline, which let ``"mnl\n"`` in as a model id; ECMA's does not.
END = r"(?!\n)$"
Id = Annotated[
    str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*" + END)
]


def identifier(value: str, param: str) -> str:
    """``value`` when it is an ``Id``: for ids that arrive outside a body (the CLI's arguments)."""
    try:
        return msgspec.convert(value, Id)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"{param}: {exc}", param=param) from exc
