"""What the numbers were measured on: date, CPU, cores, kernel, Python, tools, load, commit."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from procs import REPO
from tools import find


def _first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    except OSError:
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def describe(started: dt.datetime, load_at_start: str) -> list[str]:
    """Markdown list items."""
    return [
        f"- Date: {started.isoformat(timespec='seconds')} (UTC)",
        f"- CPU: {cpu_model()}; cores: {os.cpu_count()} (`nproc`: {_first_line(['nproc'])})",
        f"- Kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"{_first_line(['wrk', '--version'])}; {_first_line([find('nginx') or 'nginx', '-v'])}",
        f"- Load average (1, 5, 15 min) at the start: {load_at_start}; at the end: "
        f"{load_average()} (other work shares this machine)",
        f"- Lowart commit: {_first_line(['git', 'describe', '--always', '--dirty'])}",
    ]
