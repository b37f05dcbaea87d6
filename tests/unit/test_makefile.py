"""The Makefile's install on a machine without Node: the gateway installs, the console is skipped.

Dry runs (``make -n``) show what ``make install`` would do without doing it, so the virtualenv is
never touched; the ``console`` target alone runs for real, since without npm it only says why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = "skipping the web console build"


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _npm_commands(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("cd web &&")]


def test_install_without_npm_skips_the_console_and_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "bin" / "npm"
    dry = _make("-n", "install", f"NPM={missing}")
    assert dry.returncode == 0, dry.stderr
    assert SKIPPED in dry.stdout and "/ui answers 503" in dry.stdout, dry.stdout
    assert _npm_commands(dry.stdout) == [], dry.stdout

    real = _make("console", f"NPM={missing}")
    assert real.returncode == 0, real.stderr
    assert f"{missing} not found" in real.stdout and SKIPPED in real.stdout, real.stdout


def test_install_with_npm_builds_the_console(tmp_path: Path) -> None:
    npm = tmp_path / "npm"
    npm.write_text("#!/bin/sh\nexit 0\n")
    npm.chmod(0o755)
    dry = _make("-n", "-B", "console", f"NPM={npm}")  # -B: as if nothing were built yet
    assert dry.returncode == 0, dry.stderr
    assert SKIPPED not in dry.stdout
    assert [line.split()[3:5] for line in _npm_commands(dry.stdout)] == [
        [str(npm), "ci"],
        [str(npm), "run"],
    ], dry.stdout


def _syncs(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " sync " in line]


def test_run_installs_only_what_serving_needs(tmp_path: Path) -> None:
    npm = f"NPM={tmp_path / 'npm'}"  # no npm: the console's build is left out of the dry run
    run = _make("-n", "-B", "install", npm)
    assert run.returncode == 0, run.stderr
    assert _syncs(run.stdout) and all("--no-dev" in line for line in _syncs(run.stdout)), run.stdout
    dev = _make("-n", "-B", "test", npm)
    assert dev.returncode == 0, dev.stderr
    assert any("--group dev" in line for line in _syncs(dev.stdout)), dev.stdout
