"""Processes the bench starts: ports, start-up waits, log files, and stopping them by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
OUT = BENCH / "out"
WORK = OUT / "work"
PYTHON = REPO / ".venv" / "bin" / "python"
LOWART = REPO / ".venv" / "bin" / "lowart"


def log(message: str) -> None:
    """A progress line on standard output (the report comes at the end)."""
    print(f"[bench] {message}", flush=True)


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(
    port: int, name: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> None:
    """Wait until something accepts on ``port``; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {WORK}/")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not listen on port {port} within {timeout:.0f} s")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc), nearest first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        kids = parents.get(queue.pop(0), [])
        found += kids
        queue += kids
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` and its live descendants, in seconds."""
    ticks = 0
    for each in (pid, *children(pid)):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = ""
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def stop_pid(pid: int, timeout: float = 15) -> None:
    """SIGTERM a process this bench started and its descendants; SIGKILL what remains."""
    tree = [pid, *children(pid)]
    for each in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(each) for each in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    for each in tree:
        if alive(each):
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)


def spawn(
    stack: contextlib.ExitStack,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
) -> subprocess.Popen[bytes]:
    """Start a process with its output in ``WORK/<name>.log``, stopped when the stack closes."""
    logfile = (WORK / f"{name}.log").open("wb")
    stack.callback(logfile.close)
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, cwd=cwd, stdout=logfile, stderr=subprocess.STDOUT
    )

    def stop() -> None:
        if proc.poll() is None:
            stop_pid(proc.pid)
        proc.wait()

    stack.callback(stop)
    return proc


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, on one line (for a reason in the report)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-600:] or f"({path.name} is empty)"


def cause(path: Path) -> str:
    """The first error a log reports (a start-up failure's reason), else its last lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path.name})"
    for line in lines:
        at = line.lower().find("error")
        if at >= 0:  # after a start-up spinner's "..." when one shares the line
            start = line.rfind("...", 0, at)
            return line[start + 3 if start >= 0 else 0 :].strip()[:400]
    return tail(path)


def logged_errors(path: Path, keep: int = 3) -> tuple[int, list[str]]:
    """How many error lines a log has, and the first few distinct ones (with the exception
    line that closes a traceback, where there is one)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    count = 0
    kept: list[str] = []
    for i, line in enumerate(lines):
        if not (line.startswith("ERROR") or "[error" in line):
            continue
        count += 1
        last = next((x for x in lines[i + 1 : i + 60] if x and not x[0].isspace()), "")
        text = " ".join(line.split())[:200] + (f" ({last.strip()[:200]})" if ":" in last else "")
        if text not in kept and len(kept) < keep:
            kept.append(text)
    return count, kept
