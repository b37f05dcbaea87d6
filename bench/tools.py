"""The load tool and the fake upstream's server, from Debian when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from procs import log


def find(name: str) -> str | None:
    """A program on the PATH or in the sbin folders (where Debian puts nginx)."""
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).exists()), None
    )


def ensure() -> tuple[str, str]:
    """wrk and nginx, installed with apt-get when missing; returns their paths."""
    if find("wrk") is None or find("nginx") is None:
        log("installing wrk and nginx-light with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "wrk", "nginx-light"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    wrk, nginx = find("wrk"), find("nginx")
    if wrk is None or nginx is None:
        raise SystemExit("wrk and nginx are needed: apt-get install -y wrk nginx-light")
    return wrk, nginx
