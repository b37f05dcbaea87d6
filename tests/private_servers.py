"""Private Redis and PostgreSQL servers for fault tests: started on free random ports in their
own temporary directories, stopped and restarted at will, and always removed afterwards.

Fault tests kill these servers; they never touch the machine's shared Redis (6379) or
PostgreSQL (5432), which the rest of the suite uses. Not a test module: the fixtures in
``tests/fixtures_private.py`` build them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_BINDIRS = ("/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
# util-linux's setpriv: the server gets SIGKILL if the test process dies first, so that a killed
# test run leaves no server behind (pg_ctl's postmaster detaches; its teardown stops it).
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "KILL"] if _SETPRIV else []
SHARED_PORTS = frozenset({6379, 5432})  # the machine's own servers: never ours
START_TIMEOUT = 15.0
PG_USER = "postgres"  # initdb and postgres refuse to run as root


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (never a shared server's port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in SHARED_PORTS:
            return port


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class PrivateRedis:
    """``redis-server`` on 127.0.0.1 and a free port, without persistence, in ``workdir``.

    Started on construction. ``stop()`` kills it (SIGKILL, as a crash would); ``start()`` brings
    it back on the same port, empty. ``close()`` kills it for good.
    """

    def __init__(self, workdir: Path, binary: str = REDIS_SERVER) -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A synchronous client of this server (close it after use), without retries."""
        return self._client(timeout)

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def ping(self) -> bool:
        """True when the server answers PING within 0.2 s."""
        client = self._client(0.2)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def start(self) -> None:
        """Start the server (on the same port as before) and wait until it answers PING."""
        if self.running:
            return
        self.proc = subprocess.Popen(
            [
                *_DIE_WITH_PARENT,
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.log),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"private redis-server on port {self.port} did not start "
                    f"(exit {code})\n{_tail(self.log)}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server at once (SIGKILL): clients see refused connections from now on."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(START_TIMEOUT)
        self.proc = None

    def pause(self, ms: int) -> None:
        """``CLIENT PAUSE <ms> ALL``: the server accepts connections but answers nothing for
        ``ms`` (there is no unpausing it early: ``CLIENT UNPAUSE`` waits too)."""
        client = self._client(2.0)
        try:
            client.execute_command("CLIENT", "PAUSE", ms, "ALL")
        finally:
            client.close()

    def close(self) -> None:
        self.stop()


def pg_binary(name: str) -> str:
    """A PostgreSQL server program (initdb, pg_ctl, createdb...) installed on this machine."""
    for bindir in PG_BINDIRS:
        path = Path(bindir) / name
        if path.exists():
            return str(path)
    raise RuntimeError(f"PostgreSQL's {name} is not installed (looked in {PG_BINDIRS})")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: ``initdb`` (trust auth) in a temporary directory, served
    on 127.0.0.1 and a free port, its socket in that directory, with one fresh database.

    When the tests run as root, the cluster belongs to and runs as ``postgres`` (``runuser``),
    because PostgreSQL refuses root; the directory is then one of its own under the system's
    temporary directory (pytest's per-test directories are private to root). Started on
    construction; ``stop()`` is an immediate shutdown (as a crash would be), ``start()`` brings
    the same cluster and data back on the same port; ``close()`` stops it and removes it all.
    """

    def __init__(self, database: str = "lowart") -> None:
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="lowart-pg-"))
        self._as: list[str] = []
        try:
            if os.geteuid() == 0:
                owner = pwd.getpwnam(PG_USER)
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
                self._as = ["runuser", "-u", PG_USER, "--"]
            self._run(
                pg_binary("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            )
            self.start()
            self._run(
                pg_binary("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                database,
            )
        except BaseException:
            self.close()
            raise

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        """The fresh database, as the gateway's ``DATABASE_URL`` takes it (like ``pg_url``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """The same database for asyncpg directly."""
        return self.url

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:1])} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                f"{_tail(self.log)}"
            )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # fsync off is safe for a server process crash (the OS keeps the WAL); asynchronous
            # commit is not: an immediate stop would lose committed rows.
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            pg_binary("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-t",
            str(int(START_TIMEOUT)),
            "-w",
            "start",
        )

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self) -> None:
        """Immediate shutdown: every connection is cut, nothing is flushed."""
        if self.running:
            self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        """Stop it (killing our own postmaster if pg_ctl cannot) and remove its directory."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop()
        pid = self._postmaster_pid()
        if pid is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
