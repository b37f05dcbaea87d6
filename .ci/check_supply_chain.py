"""Supply-chain gate (docs/reliability.md, S16), run by ``make lint``: exit 1 with the reasons, else 0.

1. No unexpected ``.pth`` file in the project's virtual environments (``.venv``, ``.tools``): a
   ``.pth`` line that starts with ``import`` runs at every interpreter start, the usual way a
   compromised package persists. Each allowed file is named here, with what it may hold.
2. Every install is pinned by hash: ``.ci/tools.txt`` (the bootstrap, ``==`` and ``--hash`` on
   every requirement, installed by the Makefile with ``--require-hashes``), ``uv.lock`` (a
   sha256 on every artifact of every registry package, synced with ``--locked``) and
   ``web/package-lock.json`` (an ``integrity`` hash on every package, installed with ``npm ci``).
3. The copy of the shared semgrep rules matches ``security/semgrep-rules.yml`` of the project's
   ``shared`` folder, when that folder is beside the repository.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_RULES = ROOT.parent / "shared" / "security" / "semgrep-rules.yml"
RULES_COPY = ROOT / ".ci" / "semgrep" / "shared-rules.yml"


def _editable_src(text: str) -> bool:
    """uv's editable install of this project: one line, the path of its ``src``."""
    return [line.strip() for line in text.splitlines() if line.strip()] == [str(ROOT / "src")]


def _digest_in(*digests: str) -> Callable[[str], bool]:
    return lambda text: hashlib.sha256(text.encode()).hexdigest() in digests


# file name → what its content must be, per environment
PTH_ALLOWED: dict[str, dict[str, Callable[[str], bool]]] = {
    ".venv": {"_editable_impl_lowart.pth": _editable_src},
    ".tools": {
        # setuptools 65.5.0 (the one ensurepip puts in `python -m venv` on Python 3.11)
        "distutils-precedence.pth": _digest_in(
            "2638ce9e2500e572a5e0de7faed6661eb569d1b696fcba07b0dd223da5f5d224"
        ),
    },
}
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


def check_pth() -> Iterator[str]:
    for env, allowed in PTH_ALLOWED.items():
        for pth in sorted((ROOT / env).glob("lib/python*/site-packages/*.pth")):
            judge = allowed.get(pth.name)
            if judge is None:
                yield f"{pth.relative_to(ROOT)}: a .pth file not on the allowlist"
            elif not judge(pth.read_text(errors="replace")):
                yield f"{pth.relative_to(ROOT)}: content differs from the allowed one"


def check_tools_txt() -> Iterator[str]:
    text = (ROOT / ".ci" / "tools.txt").read_text()
    requirements = [
        line.strip()
        for line in text.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not requirements:
        yield ".ci/tools.txt: no requirement"
    for line in requirements:
        if "==" not in line or not _HASH.search(line):
            yield f".ci/tools.txt: not pinned by version and sha256: {line.split()[0]}"
    makefile = (ROOT / "Makefile").read_text()
    if not re.search(r"pip install\b.*--require-hashes\b.*-r \.ci/tools\.txt", makefile):
        yield "Makefile: the bootstrap is not installed with --require-hashes -r .ci/tools.txt"
    if not re.search(r"\$\(UV\) sync\b.*--locked", makefile):
        yield "Makefile: uv sync runs without --locked"


def check_uv_lock() -> Iterator[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for package in lock.get("package", []):
        name = package["name"]
        source = package.get("source", {})
        if "editable" in source or "virtual" in source:
            if name != "lowart":
                yield f"uv.lock: {name} comes from a local path"
            continue
        if "registry" not in source:
            yield f"uv.lock: {name} does not come from a registry ({source})"
            continue
        artifacts = [*package.get("wheels", [])]
        if "sdist" in package:
            artifacts.append(package["sdist"])
        if not artifacts:
            yield f"uv.lock: {name} has no artifact to verify"
        for artifact in artifacts:
            if not str(artifact.get("hash", "")).startswith("sha256:"):
                yield f"uv.lock: {name} has an artifact without a sha256"


def check_npm_lock() -> Iterator[str]:
    path = ROOT / "web" / "package-lock.json"
    if not path.exists():
        return
    packages = json.loads(path.read_text()).get("packages", {})
    for name, package in packages.items():
        if name and not package.get("link") and not package.get("integrity"):
            yield f"web/package-lock.json: {name} has no integrity hash"
    if not re.search(r"(\$\(NPM\)|npm) ci\b", (ROOT / "Makefile").read_text()):
        yield "Makefile: the web console is not installed with npm ci"


def check_rules_copy() -> Iterator[str]:
    if SHARED_RULES.exists() and SHARED_RULES.read_bytes() != RULES_COPY.read_bytes():
        yield f"{RULES_COPY.relative_to(ROOT)} differs from {SHARED_RULES}: copy it again"


def main() -> int:
    problems = [
        *check_pth(),
        *check_tools_txt(),
        *check_uv_lock(),
        *check_npm_lock(),
        *check_rules_copy(),
    ]
    for problem in problems:
        sys.stderr.write(f"supply chain: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
