"""What the gateway and a transform worker say to each other over the worker's pipes: one
length-prefixed msgpack frame per call and per reply (docs/transforms.md, "Limits").

Imported by the worker process too, so it imports nothing of the gateway's but msgspec.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

HEADER = 4  # a frame's length, big-endian, before its msgpack payload
MAX_FRAME = 256 * 1024 * 1024  # a bigger announced frame means the stream is garbage

Status = Literal["ok", "rejected", "error", "timeout"]


class Call(msgspec.Struct, array_like=True, frozen=True):
    """Run ``entry(*args)`` of the module ``source`` (known to the worker as ``key``, loaded
    once per worker), within ``timeout_ms``. An empty ``entry`` only loads the module and checks
    that each of ``required`` is a function of it (validation at registration). ``each``: the
    first argument is a list, and ``entry`` runs on each of its items (each within
    ``timeout_ms``), the reply's value the list of results (one call for the events of one
    upstream read)."""

    key: str
    source: str
    entry: str
    args: list[Any]
    timeout_ms: int
    required: list[str] = []
    each: bool = False


class Reply(msgspec.Struct, array_like=True, frozen=True):
    """``ok`` with the returned value; ``rejected``: the script called ``fail(msg)``;
    ``error``: it did not load, raised or returned what cannot be sent; ``timeout``: the
    interpreter cancelled it."""

    status: Status
    value: Any = None
    message: str = ""


def frame(payload: bytes) -> bytes:
    """``payload`` with its length before it."""
    return len(payload).to_bytes(HEADER, "big") + payload


def frame_length(header: bytes) -> int:
    """The length a frame's header announces; ``ValueError`` when it cannot be a frame."""
    size = int.from_bytes(header, "big")
    if len(header) != HEADER or size > MAX_FRAME:
        raise ValueError(f"bad frame header {header!r}")
    return size
