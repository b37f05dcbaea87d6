"""Where a request's time goes, stage by stage: ``.venv/bin/python bench/profile.py``.

The work is in :mod:`profiling`. This file's name shadows the standard library's ``profile``,
which ``cProfile`` imports: the bench folder moves to the end of the module path, so the
standard library wins and the bench's own modules still load.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH] + [str(_BENCH)]

import profiling  # noqa: E402 (after the path is set)

if __name__ == "__main__":
    sys.exit(profiling.main())
