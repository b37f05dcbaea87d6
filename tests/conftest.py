"""Shared fixtures: fake upstreams, in-process gateways on real sockets, a PostgreSQL database."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import asyncpg
import httpx
import openai
import pytest

from lowart.app import LowartApp, create_app
from lowart.providers.registry import VendorTable
from lowart.settings import Settings
from lowart.telemetry.logging import configure_logging
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import ThreadedServer, run_in_thread

pytest_plugins = ["tests.fixtures_private"]  # private Redis/PostgreSQL for fault tests

ADMIN_KEY = "lw-admin-test-key-0123456789abcdef"
MASTER_KEY = "test-master-key-0123456789abcdefghijklmnop"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Wait for a condition the system reaches by itself (a cache refresh, a flush)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(interval)


@dataclass
class Gateway:
    """A gateway served in-process on a real socket, with helpers for the admin API."""

    app: LowartApp
    server: ThreadedServer
    settings: Settings
    sdk_clients: list[openai.OpenAI | anthropic.Anthropic] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def v1(self) -> str:
        return self.server.base_url + "/v1"

    @property
    def db_path(self) -> Path:
        return Path(self.settings.database.url.removeprefix("sqlite:///"))

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.request(method, path, **kwargs)

    def create_user(self, user_id: str | None = None, **fields: Any) -> str:
        """Create a user through the admin API; returns its key."""
        user_id = user_id or "user-" + secrets.token_hex(4)
        response = self.admin("POST", "/admin/users/quota", json={"user_id": user_id, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])

    def add_model(self, model_id: str, vendor: str = "OpenAI", **fields: Any) -> dict[str, Any]:
        body = {"model_id": model_id, "vendor_type": vendor, **fields}
        response = self.admin("POST", "/admin/models", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL on the SQLite file directly, as an operator editing it by hand would."""
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            rows = conn.execute(query, params).fetchall()
        conn.close()
        return rows

    def flush(self) -> None:
        """Write the queued usage (the admin usage endpoints settle before reading)."""
        assert self.admin("GET", "/admin/usage").status_code == 200

    def openai(self, key: str, retries: int = 0) -> openai.OpenAI:
        """The official OpenAI SDK, pointed at this gateway (closed when the gateway stops)."""
        client = openai.OpenAI(base_url=self.v1, api_key=key, max_retries=retries)
        self.sdk_clients.append(client)
        return client

    def anthropic(self, key: str, retries: int = 0) -> anthropic.Anthropic:
        """The official Anthropic SDK, pointed at this gateway (closed when it stops)."""
        client = anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=retries)
        self.sdk_clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.sdk_clients:
            client.close()
        self.server.stop()


def gateway_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings().replace(
        database_url=f"sqlite:///{tmp_path}/lowart.db",
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        usage_flush_ms=20,
        cache_refresh_s=0.2,
        lowart_workdir=tmp_path,
        port=0,
    )
    return base.replace(**overrides)


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways with settings overrides; all are stopped at the end of the test."""
    started: list[Gateway] = []

    def start(
        vendors: VendorTable | None = None,
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> Gateway:
        settings = gateway_settings(tmp_path, **overrides)
        app = create_app(settings, vendors=vendors, clock=clock)
        gateway = Gateway(app, run_in_thread(app), settings)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    """The fake OpenAI upstream: (app, its /v1 base URL)."""
    app = FakeOpenAI()
    with run_in_thread(app) as server:
        yield app, server.base_url + "/v1"


async def _pg(query: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database on the machine's server (its URL), dropped afterwards."""
    name = "lowart_t_" + secrets.token_hex(6)
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging("info", "console")
