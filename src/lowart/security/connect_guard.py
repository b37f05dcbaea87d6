"""The SSRF policy applied where connections are made: after DNS, to the address each one goes to.

- ``GuardedConnector``: the aiohttp connector of the upstream session (vendors, ComfyUI and its
  ``/view`` outputs and websocket). Every new connection's resolved addresses (IP literals
  included) are checked; refused ones are dropped, and with none left the connection fails
  before a byte is sent.
- ``guarded_transport``: the same for the httpx2 client of MCP servers over HTTP.
- ``vet_url``: the registration check, which also resolves the host now.

A name resolved once at registration may resolve elsewhere later (DNS rebinding): only the
connect-time check is authoritative, and it runs on every new connection.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
import anyio
import httpcore2
import httpx2
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.tracing import Trace

from lowart.security.ssrf import DestinationPolicy, ForbiddenDestination


def _allowed(policy: DestinationPolicy, host: str, addresses: Iterable[str]) -> list[str]:
    """The addresses of ``host`` the policy allows; ForbiddenDestination when none is."""
    allowed: list[str] = []
    refusal: ForbiddenDestination | None = None
    for address in addresses:
        try:
            policy.check_address(host, address)
        except ForbiddenDestination as exc:
            refusal = exc
        else:
            allowed.append(address)
    if not allowed:
        raise refusal or ForbiddenDestination(f"{host} resolved to no address")
    return allowed


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to addresses the policy allows."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        resolver: AbstractResolver | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resolver=resolver, **kwargs)
        self._policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Trace] | None = None
    ) -> list[ResolveResult]:
        self._policy.check_host(host)
        results = await super()._resolve_host(host, port, traces)
        allowed = set(_allowed(self._policy, host, (r["host"] for r in results)))
        return [r for r in results if r["host"] in allowed]


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking before it connects by address.

    TLS still verifies the certificate for the host name: httpcore starts it with the origin's
    name, whatever address the TCP connection went to.
    """

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self._policy.check_host(host)
        with anyio.fail_after(timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        *first, last = _allowed(self._policy, host, addresses)
        options = list(socket_options or ())
        for address in first:  # the others in turn, as a resolver's answers are tried
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout):
                continue
        return await self._inner.connect_tcp(last, port, timeout, local_address, options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise ForbiddenDestination(f"unix socket {path} is refused")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over the guarded backend: no proxies from the environment."""

    def __init__(self, policy: DestinationPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(policy),
        )


def guarded_transport(policy: DestinationPolicy) -> httpx2.AsyncHTTPTransport:
    """An httpx2 transport that connects only where the policy allows."""
    return _GuardedTransport(policy)


async def vet_url(
    policy: DestinationPolicy, url: str, resolver: AbstractResolver | None = None
) -> None:
    """The registration check of a URL the gateway will fetch; ``ValueError`` says why not.

    Besides the URL's own form, every address its host resolves to now must be allowed. A name
    that does not resolve (yet) passes: the connect-time check still applies to it.
    """
    host, port = policy.check_url(url)
    own = resolver is None
    resolver = resolver or aiohttp.ThreadedResolver()
    try:
        results = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
    except OSError:
        return
    finally:
        if own:
            await resolver.close()
    for result in results:
        try:
            policy.check_address(host, result["host"])
        except ForbiddenDestination as exc:
            raise ValueError(str(exc)) from exc
