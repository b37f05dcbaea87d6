"""Run ``lowart serve`` as a real child process, the way an operator starts it.

Not a test module: the end-to-end tests import ``ServeProcess`` and the shared constants.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from lowart.settings import setting_names

ADMIN_KEY = "lw-e2e-admin-key-0123456789abcdef"
MASTER_KEY = "e2e-master-key-A-0123456789abcdefghijklmnop"
OTHER_MASTER_KEY = "e2e-master-key-B-0123456789abcdefghijklmnop"
LOWART = str(Path(sys.executable).parent / "lowart")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
LISTENING = "Lowart listening on "
# How a SIGTERM-ed server ends (docs/deployment.md, "Shutdown": exit 0).
STOPPED = (0,)

# Every setting the gateway reads (and the new key of `lowart rotate-master-key`): the parent's
# values must not leak into a child.
_SETTINGS = (*setting_names(), "NEW_MASTER_KEY")


def child_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a child: test defaults, then ``overrides`` (``None`` unsets one)."""
    env = {name: value for name, value in os.environ.items() if name not in _SETTINGS}
    env.update(
        {
            "PORT": "0",
            "ADMIN_KEY": ADMIN_KEY,
            "MASTER_KEY": MASTER_KEY,
            "CACHE_REFRESH_S": "0.2",
            "USAGE_FLUSH_MS": "50",
            "SHUTDOWN_GRACE_S": "5",
            "LOG_LEVEL": "warning",
        }
    )
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_cli(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run one ``lowart`` command to completion (killed, and an error, after ``timeout``)."""
    return subprocess.run(
        [LOWART, *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sql(db: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL on the SQLite file directly, as an operator editing it by hand would."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        with conn:
            return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def db_dump(db: Path) -> tuple[bytes, str]:
    """The SQLite file with its WAL and journal, as bytes, and the SQL dump of its content."""
    raw = b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))
    conn = sqlite3.connect(db)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    return raw, dump


class _Reader(threading.Thread):
    """Drains one pipe of the child, so that it never blocks on a full pipe."""

    def __init__(self, stream: Any, lines: queue.Queue[str | None] | None) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._lines = lines
        self._chunks: list[str] = []
        self._lock = threading.Lock()

    def run(self) -> None:
        for line in self._stream:
            with self._lock:
                self._chunks.append(line)
            if self._lines is not None:
                self._lines.put(line)
        if self._lines is not None:
            self._lines.put(None)  # end of file

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._chunks)


class ServeProcess:
    """``lowart serve`` in ``cwd`` with environment ``overrides``; started on construction.

    Raises ``AssertionError`` (with the child's output) if it exits before it listens.
    """

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str | None] | None = None,
        start_timeout: float = START_TIMEOUT,
        umask: int = -1,  # the child's umask; -1 keeps the test process's
        lowart: str = LOWART,  # the console script (another virtualenv's, for an installed wheel)
    ) -> None:
        self.cwd = cwd
        self.env = child_env(env)
        self.url: str | None = None
        self.uds: str | None = None
        self.returncode: int | None = None
        self.proc = subprocess.Popen(
            [lowart, "serve"],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=umask,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._out = _Reader(self.proc.stdout, self._lines)
        self._err = _Reader(self.proc.stderr, None)
        self._out.start()
        self._err.start()
        try:
            self._await_listening(start_timeout)
        except BaseException:
            self.kill()
            raise

    def _await_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"lowart serve did not listen within {timeout} s\n{self.output()}"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(STOP_TIMEOUT)
                self._finish()
                raise AssertionError(
                    f"lowart serve exited with {code} before listening\n{self.output()}"
                )
            if line.startswith(LISTENING):
                address = line.removeprefix(LISTENING).strip()
                if address.startswith("unix:"):
                    self.uds = address.removeprefix("unix:")
                else:
                    self.url = address
                return

    @property
    def stdout(self) -> str:
        return self._out.text

    @property
    def stderr(self) -> str:
        return self._err.text

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"

    @property
    def db(self) -> Path:
        """The default SQLite file in the working directory."""
        return self.cwd / "lowart.db"

    def client(self, key: str | None = ADMIN_KEY, **headers: str) -> httpx.Client:
        """A client for this server (TCP or UDS); ``key`` goes in ``Authorization: Bearer``."""
        all_headers = {"authorization": f"Bearer {key}"} if key else {}
        all_headers.update(headers)
        if self.uds is not None:
            return httpx.Client(
                transport=httpx.HTTPTransport(uds=self.uds),
                base_url="http://lowart",
                headers=all_headers,
                timeout=30,
            )
        assert self.url is not None
        return httpx.Client(base_url=self.url, headers=all_headers, timeout=30)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.request(method, path, **kwargs)

    def create_user(self, user_id: str, **fields: Any) -> str:
        """Create a user through the admin API; returns its key."""
        response = self.admin("POST", "/admin/users/quota", json={"user_id": user_id, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the child to exit by itself; returns its exit code."""
        self.returncode = self.proc.wait(timeout)
        self._finish()
        return self.returncode

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait for the exit, return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL (if still running) and release everything."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait(STOP_TIMEOUT)
        self._finish()

    def _finish(self) -> None:
        self._out.join(STOP_TIMEOUT)
        self._err.join(STOP_TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
