"""A transform worker: a process of its own that runs Starlark scripts for the gateway, one call
at a time, reading calls on stdin and writing replies on stdout (``protocol.py``).

It runs under an address-space limit (``TRANSFORM_MEMORY_MB``): an allocation past it aborts
this process, never the gateway's, and the pool replaces it. Time is bounded inside the
interpreter: ``EvalOptions(check_cancelled=…)`` stops a call past its deadline, and
``max_callstack_size`` stops deep recursion. ``fail(msg)`` is Starlark's own; its message is
told apart from other errors by the interpreter's first error line. Scripts have no ``load()``
(no loader is given), no file, network, clock or randomness: only the standard globals and
``json``. A module's
globals are frozen after its top-level code ran, so a call cannot keep anything for the next
(docs/transforms.md, "Limits").

Run as ``python -m lowart.transforms.worker <memory_mb> <max_callstack>``.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from typing import BinaryIO

import msgspec
import starlark as sl

from lowart.transforms.protocol import HEADER, Call, Reply, frame, frame_length

MAX_MODULES = 64  # modules kept loaded; past it the cache starts over
FILENAME = "transform.star"
_FAIL_PREFIX = "error: fail: "
TIMED_OUT = "the script ran past its time limit"


class Rejected(Exception):
    """The module lacks an entry point it declares."""


class Late(Exception):
    """A call finished past its deadline."""


def _deadline(timeout_ms: int) -> Callable[[], bool]:
    end = time.monotonic() + timeout_ms / 1000

    def cancelled() -> bool:
        return time.monotonic() > end

    return cancelled


class Interpreter:
    """The loaded modules of this worker, and how one call runs."""

    def __init__(self, max_callstack: int) -> None:
        self._max_callstack = max_callstack
        self._globals = sl.Globals.extended_by([sl.LibraryExtension.Json])
        self._modules: dict[str, sl.FrozenModule] = {}

    def _options(self, timeout_ms: int) -> sl.EvalOptions:
        return sl.EvalOptions(
            check_cancelled=_deadline(timeout_ms), max_callstack_size=self._max_callstack
        )

    def _load(self, call: Call) -> sl.FrozenModule:
        frozen = self._modules.get(call.key)
        if frozen is not None and not call.required:
            return frozen
        ast = sl.parse(FILENAME, call.source, sl.Dialect.standard())
        module = sl.Module()
        sl.eval_with(self._options(call.timeout_ms), module, ast, self._globals)
        for name in call.required:
            self._check_entry(module, name)
        if len(self._modules) >= MAX_MODULES:
            self._modules.clear()
        frozen = self._modules[call.key] = module.freeze()
        return frozen

    def _check_entry(self, module: sl.Module, name: str) -> None:
        kind = None
        if name.isidentifier() and _defined(module, name):
            kind = sl.eval(module, sl.parse("check.star", f"type({name})"), self._globals)
        if kind != "function":
            raise Rejected(f"the script defines no function {name}(…), which it declares")

    def run(self, call: Call) -> Reply:
        try:
            frozen = self._load(call)
            if not call.entry:
                return Reply("ok")
            value = self._call(frozen, call)
        except Rejected as exc:
            return Reply("error", message=str(exc))
        except sl.StarlarkError as exc:
            return _classified(str(exc))
        except Late:
            return Reply("timeout", message=TIMED_OUT)
        return Reply("ok", value)

    def _call(self, frozen: sl.FrozenModule, call: Call) -> object:
        if not call.each:
            return self._one(frozen, call, *call.args)
        items, *rest = call.args
        return [self._one(frozen, call, item, *rest) for item in items]

    def _one(self, frozen: sl.FrozenModule, call: Call, *args: object) -> object:
        """One call; a builtin that ran past the deadline (the interpreter checks between
        steps, not inside a builtin) returned too late, and its result is refused."""
        end = time.monotonic() + call.timeout_ms / 1000
        value = frozen.call_with(self._options(call.timeout_ms), call.entry, *args).value
        if time.monotonic() > end:
            raise Late
        return value


def _defined(module: sl.Module, name: str) -> bool:
    try:
        return module[name] is not None
    except sl.StarlarkError:  # a function cannot be shown as a value, but it is there
        return True


def _classified(message: str) -> Reply:
    """A Starlark error as a reply: a ``fail()`` that reached here, a cancellation, or an error
    (its message, with the line and column the interpreter gives)."""
    first = next((line for line in message.splitlines() if line.startswith("error: ")), "")
    if first.startswith(_FAIL_PREFIX):
        return Reply("rejected", message=first.removeprefix(_FAIL_PREFIX))
    if first == "error: Evaluation cancelled":
        return Reply("timeout", message=TIMED_OUT)
    return Reply("error", message=message.strip())


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def serve(stdin: BinaryIO, stdout: BinaryIO, interpreter: Interpreter) -> None:
    """Answer calls until stdin closes."""
    decoder = msgspec.msgpack.Decoder(Call)
    encoder = msgspec.msgpack.Encoder()
    while True:
        try:
            size = frame_length(_read_exactly(stdin, HEADER))
            call = decoder.decode(_read_exactly(stdin, size))
        except EOFError:
            return
        reply = interpreter.run(call)
        try:
            payload = encoder.encode(reply)
        except (TypeError, ValueError, OverflowError) as exc:
            payload = encoder.encode(Reply("error", message=f"the script returned {exc}"))
        stdout.write(frame(payload))
        stdout.flush()


def main(argv: list[str]) -> None:
    memory_mb, max_callstack = int(argv[1]), int(argv[2])
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    interpreter = Interpreter(max_callstack)
    sys.stdout.buffer.write(frame(msgspec.msgpack.encode(Reply("ok"))))  # ready
    sys.stdout.buffer.flush()
    serve(sys.stdin.buffer, sys.stdout.buffer, interpreter)


if __name__ == "__main__":
    main(sys.argv)
