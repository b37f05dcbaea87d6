"""The peers users would pick instead, started with the scripts in ``shared/peers``.

LiteLLM proxy serves one upstream per process, so it runs twice (non-streaming and streaming
upstreams); Portkey picks the upstream per request from a header. A peer that cannot be
installed or started becomes :class:`Unavailable` with the reason, and the bench goes on.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

from procs import BENCH, REPO, cause, free_port, log, port_open, stop_pid, tail
from targets import MODE_LABEL, MODES, Target, Unavailable, Upstream, check

SCRIPTS = REPO.parent / "shared" / "peers"
PEERS_DIR = BENCH / ".peers"  # git-ignored (".peers/" in .gitignore)
PORTKEY_PORT = 8787
INSTALL_TIMEOUT_S = float(os.environ.get("BENCH_PEER_TIMEOUT", "900"))


def _run_script(
    stack: contextlib.ExitStack, script: str, upstream: str, port: int, peers_dir: Path
) -> int:
    """Run a peer's script (it installs on first use, starts in the background, waits for
    health); returns the pid it started, which the stack stops."""
    env = {**os.environ, "PEERS_DIR": str(peers_dir)}
    done = subprocess.run(
        ["bash", str(SCRIPTS / script), upstream, str(port)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    found = re.search(r"pid (\d+)", done.stdout)
    if found:
        pid = int(found[1])
        stack.callback(stop_pid, pid)
    if done.returncode != 0 or not found:
        reason = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{script} exited with {done.returncode}: {' | '.join(reason)}")
    return pid


def _checked(target: Target, logfile: Path) -> Target | Unavailable:
    """The peer with the modes that failed one request marked broken (with the error its log
    gives); unavailable when none answered."""
    failures = check(target)
    for mode, failure in failures.items():
        failures[mode] = f"{failure}; its log: {cause(logfile)}"
        log(f"{target.name} {MODE_LABEL[mode]}: not measured: {failures[mode]}")
    if len(failures) == len(MODES):
        return Unavailable(target.name, "; ".join(failures.values()))
    if not failures:
        log(f"{target.name}: one non-stream and one stream request answered correctly")
    return replace(target, broken=failures)


def start_litellm(stack: contextlib.ExitStack, upstream: Upstream) -> Target | Unavailable:
    """LiteLLM proxy 1.108.7, 1 worker, master key only; one process per mode."""
    urls, pids = {}, {}
    try:
        for mode in MODES:
            # One install (PEERS_DIR/litellm-venv); each process its own config, log and pid.
            peers_dir = PEERS_DIR if mode == "json" else PEERS_DIR / f"litellm-{mode}"
            if peers_dir != PEERS_DIR:
                peers_dir.mkdir(parents=True, exist_ok=True)
                link = peers_dir / "litellm-venv"
                if not link.exists():
                    link.symlink_to(PEERS_DIR / "litellm-venv")
            port = free_port()
            log(f"litellm ({mode}): installing on first use and starting (port {port})")
            pid = _run_script(stack, "litellm.sh", upstream.v1(mode), port, peers_dir)
            if not port_open(port):
                raise RuntimeError(
                    f"litellm ({mode}) is not listening after its start-up wait: "
                    f"{tail(peers_dir / 'litellm.log')}"
                )
            urls[mode] = f"http://127.0.0.1:{port}/v1/chat/completions"
            pids[mode] = pid
        target = Target(
            name="litellm",
            urls=urls,
            models=dict.fromkeys(MODES, "gpt-4o"),
            headers={mode: {"Authorization": "Bearer sk-master-1234"} for mode in MODES},
            pids=pids,
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"litellm: unavailable: {exc}")
        return Unavailable("litellm", str(exc))
    return _checked(target, PEERS_DIR / "litellm.log")


def start_portkey(stack: contextlib.ExitStack, upstream: Upstream) -> Target | Unavailable:
    """Portkey gateway 1.15.2 on Node; the upstream is chosen per request by a header."""
    try:
        # portkey.sh passes "--port N", but start-server.js reads only "--port=N": Portkey
        # listens on its default port whatever the script is given, so the bench asks for it.
        port = PORTKEY_PORT
        if port_open(port):
            raise RuntimeError(f"port {port} is taken, and Portkey listens on no other")
        log(f"portkey: installing on first use and starting (port {port})")
        pid = _run_script(stack, "portkey.sh", upstream.v1("json"), port, PEERS_DIR)
        if not port_open(port):
            raise RuntimeError(
                f"portkey is not listening after its start-up wait: "
                f"{tail(PEERS_DIR / 'portkey.log')}"
            )
        headers = {
            mode: {
                "Authorization": "Bearer sk-bench",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": upstream.v1(mode),
            }
            for mode in MODES
        }
        target = Target(
            name="portkey",
            urls=dict.fromkeys(MODES, f"http://127.0.0.1:{port}/v1/chat/completions"),
            models=dict.fromkeys(MODES, "gpt-4o"),
            headers=headers,
            pids=dict.fromkeys(MODES, pid),
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"portkey: unavailable: {exc}")
        return Unavailable("portkey", str(exc))
    return _checked(target, PEERS_DIR / "portkey.log")
