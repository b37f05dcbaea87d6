"""The wheel as an operator installs it: ``make dist``, then an install of the wheel constrained
by ``dist/requirements.txt`` into a fresh virtualenv outside the checkout, then ``lowart serve``
from it, with the console at ``/ui`` (docs/deployment.md, "From a wheel").

The install is ``uv pip install -c`` (the checkout's uv, whose cache makes it take seconds; pip
took 16 to 50 s on the shared test machine): the same constraints, the same wheel, a real install
from the package index into an empty virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.e2e.serve_process import ADMIN_KEY, STOPPED, ServeProcess

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"
CONSOLE = ROOT / "src" / "lowart" / "ui" / "dist" / "index.html"
INSTALL_TIMEOUT = 300


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _outside_checkout() -> dict[str, str]:
    """The environment with nothing pointing into the checkout or its virtualenv."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }


def test_wheel_installs_and_serves_in_a_fresh_venv(tmp_path: Path) -> None:
    assert CONSOLE.is_file(), "run `make install` (it builds the console with npm)"
    dist = tmp_path / "dist"
    # -o console: the console is built already (checked above); make must not rebuild it here.
    _run(["make", "--no-print-directory", "-o", "console", "dist", f"DIST={dist}"], ROOT)
    (wheel,) = dist.glob("lowart-*.whl")
    assert len(list(dist.glob("lowart-*.tar.gz"))) == 1
    with zipfile.ZipFile(wheel) as archive:
        assert "lowart/ui/dist/index.html" in archive.namelist()
    lines = (dist / "requirements.txt").read_text().splitlines()
    pinned = {line.split("==")[0] for line in lines if "==" in line and line[0].isalpha()}
    assert "uvicorn" in pinned and not pinned & {"pytest", "mypy", "semgrep"}, pinned  # runtime

    env = _outside_checkout()
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    _run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], tmp_path, env)
    install = [str(UV), "pip", "install", "--quiet", "--python", python]
    _run([*install, "-c", str(dist / "requirements.txt"), str(wheel)], tmp_path, env)
    where = _run([python, "-c", "import lowart; print(lowart.__file__)"], tmp_path, env)
    assert where.startswith(str(venv)), where  # the installed package, not the checkout's

    home = tmp_path / "run"
    home.mkdir()
    with ServeProcess(home, {"PYTHONPATH": None}, lowart=str(venv / "bin" / "lowart")) as server:
        with server.client(None) as client:
            assert client.get("/health").status_code == 200
            console = client.get("/ui")
        assert console.status_code == 200, console.text
        assert console.text == CONSOLE.read_text()
        with server.client(ADMIN_KEY) as client:
            chat = client.post(
                "/v1/chat/completions",
                json={"model": "mock", "messages": [{"role": "user", "content": "from a wheel"}]},
            )
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"] == "from a wheel"
        assert server.terminate() in STOPPED, server.output()
    assert (home / "lowart.db").is_file()
