"""The systems measured side by side, each answering ``POST .../chat/completions`` the OpenAI
way: the fake upstream (nginx) called directly, the bare pass-through, Lowart, and the peers."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blocking_http import call
from gateway import Gateway
from procs import BENCH, PYTHON, REPO, WORK, free_port, log, port_open, spawn, wait_port

NGINX_CONF = REPO.parent / "shared" / "peers" / "upstream-nginx.conf"
NGINX_PORT = 9999
MODES = ("json", "sse")  # non-streaming, streaming
MODE_LABEL = {"json": "non-stream", "sse": "stream"}


@dataclass(frozen=True)
class Target:
    """One system, with what to send it per mode (``json`` or ``sse``)."""

    name: str
    urls: Mapping[str, str]  # mode -> full URL to POST to
    models: Mapping[str, str]  # mode -> the "model" in the body
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # mode -> headers
    pids: Mapping[str, int] = field(default_factory=dict)  # mode -> the serving process
    broken: Mapping[str, str] = field(default_factory=dict)  # mode -> why it is not measured
    api: str = "chat"  # "responses": OpenAI's Responses API, not kept (``store: false``)

    def body(self, mode: str) -> str:
        payload: dict[str, Any] = {"model": self.models[mode]}
        if self.api == "responses":
            payload |= {"input": "hi", "store": False}
        else:
            payload["messages"] = [{"role": "user", "content": "hi"}]
        if mode == "sse":
            payload["stream"] = True
        return json.dumps(payload, separators=(",", ":"))

    def headers_for(self, mode: str) -> dict[str, str]:
        return dict(self.headers.get(mode, {}))


@dataclass(frozen=True)
class Unavailable:
    """A system that could not be measured, and why (its rows say so)."""

    name: str
    reason: str


def check(target: Target) -> dict[str, str]:
    """One request per mode; returns what failed, by mode (empty when all answered well)."""
    failures = {}
    for mode in MODES:
        body = json.loads(target.body(mode))
        try:
            status, raw = call("POST", target.urls[mode], body, target.headers_for(mode), 60)
        except OSError as exc:
            failures[mode] = f"{type(exc).__name__}: {exc}"
            continue
        text = raw.decode(errors="replace")
        done, whole = (
            ("response.completed", '"output"')
            if target.api == "responses"
            else (
                "[DONE]",
                '"choices"',
            )
        )
        ok = status == 200 and (done in text if mode == "sse" else whole in text)
        if not ok:
            failures[mode] = f"HTTP {status}: {' '.join(text[:200].split())}"
    return failures


def verify(target: Target) -> None:
    """One request per mode must succeed before anything is measured."""
    failures = check(target)
    if failures:
        raise RuntimeError(f"{target.name}: {failures}")
    log(f"{target.name}: one non-stream and one stream request answered correctly")


@dataclass(frozen=True)
class Upstream:
    """The fake upstream: fixed JSON at ``/json/v1``, fixed SSE at ``/sse/v1``."""

    base: str
    pid: int

    def v1(self, mode: str) -> str:
        return f"{self.base}/{mode}/v1"


def start_nginx(stack: contextlib.ExitStack, nginx: str, scratch: Path | None = None) -> Upstream:
    """nginx with the config of ``shared/peers``, on port 9999 when it is free; when something
    else holds it (another session's nginx, say), on a free port, from a copy of the config."""
    if not NGINX_CONF.exists():
        raise SystemExit(f"missing {NGINX_CONF}")
    scratch = scratch or WORK / "nginx"
    scratch.mkdir(parents=True)
    conf, port = NGINX_CONF.resolve(), NGINX_PORT
    if port_open(port):
        port = free_port()
        text = NGINX_CONF.read_text()
        listen = f"listen 127.0.0.1:{NGINX_PORT};"
        if listen not in text:
            raise SystemExit(f"port {NGINX_PORT} is taken and {NGINX_CONF} has no {listen!r}")
        conf = scratch / "upstream-nginx.conf"
        conf.write_text(text.replace(listen, f"listen 127.0.0.1:{port};"))
        log(f"port {NGINX_PORT} is taken: the fake upstream listens on {port} instead")
    command = [nginx, "-p", str(scratch), "-c", str(conf)]
    subprocess.run([*command, "-e", "upstream-nginx.err"], check=True)
    stack.callback(subprocess.run, [*command, "-e", "upstream-nginx.err", "-s", "stop"])
    wait_port(port, "nginx")
    pid = int((scratch / "upstream-nginx.pid").read_text().strip())
    return Upstream(f"http://127.0.0.1:{port}", pid)


def nginx_target(upstream: Upstream) -> Target:
    return Target(
        name="nginx",
        urls={mode: upstream.v1(mode) + "/chat/completions" for mode in MODES},
        models=dict.fromkeys(MODES, "gpt-4o"),
        pids=dict.fromkeys(MODES, upstream.pid),
    )


def start_passthrough(stack: contextlib.ExitStack, upstream: Upstream) -> Target:
    """One ``bench/passthrough.py`` per mode: the fake upstream serves each at its own path."""
    urls, pids = {}, {}
    for mode in MODES:
        port = free_port()
        env = {"UPSTREAM": upstream.v1(mode), "PORT": str(port)}
        argv = [str(PYTHON), str(BENCH / "passthrough.py")]
        proc = spawn(stack, f"passthrough-{mode}", argv, env, WORK)
        wait_port(port, f"passthrough ({mode})", proc)
        urls[mode] = f"http://127.0.0.1:{port}/v1/chat/completions"
        pids[mode] = proc.pid
    return Target(name="passthrough", urls=urls, models=dict.fromkeys(MODES, "gpt-4o"), pids=pids)


def lowart_target(gw: Gateway, upstream: Upstream, name: str = "lowart") -> Target:
    """The gateway with a model per mode in front of the fake upstream."""
    for mode in MODES:
        gw.add_model(f"bench-{mode}", upstream.v1(mode))
    return Target(
        name=name,
        urls=dict.fromkeys(MODES, gw.chat_url),
        models={mode: f"bench-{mode}" for mode in MODES},
        headers=dict.fromkeys(MODES, gw.auth),
        pids=dict.fromkeys(MODES, gw.pid),
    )


def responses_target(gw: Gateway) -> Target:
    """The same gateway and models through ``POST /v1/responses``, translated to chat for the
    fake upstream (``store: false``: the row measures the translation, not a database write)."""
    return Target(
        name="lowart-responses",
        urls=dict.fromkeys(MODES, gw.base + "/v1/responses"),
        models={mode: f"bench-{mode}" for mode in MODES},
        headers=dict.fromkeys(MODES, gw.auth),
        pids=dict.fromkeys(MODES, gw.pid),
        api="responses",
    )
