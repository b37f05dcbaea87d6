"""The SSRF policy: which destinations the gateway may connect to (docs/reliability.md, S10, S11).

Always refused: link-local networks (169.254.0.0/16, fe80::/10), cloud metadata addresses and
names, unspecified, multicast and reserved addresses, whatever form they are written in
(IPv4-mapped, NAT64, 6to4 and Teredo IPv6 addresses are judged by the IPv4 address they carry).
Loopback, private and every other non-global address are allowed unless the policy says
otherwise (``UPSTREAM_ALLOW_PRIVATE=false``): a local ComfyUI or vLLM is the common case.

``check_url`` is the registration check; ``connect_guard.py`` applies ``refusal`` to the address
each connection actually goes to, after DNS, so a name that resolves (or re-resolves) to a
refused address is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES: Final = frozenset({"http", "https"})
# Instance metadata services: AWS, Azure, GCP, DigitalOcean (169.254.169.254, link-local in any
# case), AWS over IPv6, Alibaba Cloud, Oracle Cloud.
METADATA_ADDRESSES: Final = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("192.0.0.192"),
    }
)
METADATA_NAMES: Final = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_REFUSED_NETWORKS: Final = (
    (ipaddress.ip_network("169.254.0.0/16"), "a link-local address"),
    (ipaddress.ip_network("fe80::/10"), "a link-local address"),
    (ipaddress.ip_network("0.0.0.0/8"), "an unspecified address"),
    (ipaddress.ip_network("::/128"), "an unspecified address"),
    (ipaddress.ip_network("224.0.0.0/4"), "a multicast address"),
    (ipaddress.ip_network("ff00::/8"), "a multicast address"),
    (ipaddress.ip_network("240.0.0.0/4"), "a reserved address"),
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


class ForbiddenDestination(ConnectionRefusedError):
    """A destination the policy refuses. An ``OSError``, so that the HTTP clients report it as
    a failed connection (502 upstream), and raised before any byte is sent."""


def _carried(address: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address an IPv6 one carries."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.append(address.teredo[1])
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _legacy_ipv4(name: str) -> bool:
    """True for the numeric forms the C resolver reads as IPv4 (``127.1``, ``2130706433``,
    ``0x7f000001``, ``017700000001``), which no URL should use."""
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True


def _host_name(host: str) -> str:
    return host.strip().rstrip(".").lower()


def parse_address(host: str) -> IPAddress | None:
    """The IP address a host literal names (brackets and an IPv6 zone allowed), else None."""
    text = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Where upstream connections may go; ``allow_private`` admits loopback and private ranges."""

    allow_private: bool = True

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None when it is allowed."""
        for candidate in _carried(address):
            if candidate in METADATA_ADDRESSES:
                return "a cloud metadata address"
            for network, reason in _REFUSED_NETWORKS:
                if candidate.version == network.version and candidate in network:
                    return reason
            if not self.allow_private and not candidate.is_global:
                return "a loopback or private address (UPSTREAM_ALLOW_PRIVATE is false)"
        return None

    def check_address(self, host: str, address: str) -> None:
        """Raise ``ForbiddenDestination`` unless ``address`` (what ``host`` resolved to) is
        allowed; an address that does not parse is refused."""
        parsed = parse_address(address.split("%", 1)[0])
        reason = "not an IP address" if parsed is None else self.refusal(parsed)
        if reason is not None:
            raise ForbiddenDestination(f"{host} ({address}) is refused: {reason}")

    def check_host(self, host: str) -> None:
        """Refuse metadata names, and host literals that are refused addresses."""
        name = _host_name(host)
        if name in METADATA_NAMES or name.endswith(".metadata.google.internal"):
            raise ForbiddenDestination(f"{host} is refused: a cloud metadata name")
        address = parse_address(name)
        if address is None and _legacy_ipv4(name):
            raise ForbiddenDestination(
                f"{host} is refused: an IPv4 address in a legacy form (write it as a.b.c.d)"
            )
        if address is not None:
            reason = self.refusal(address)
            if reason is not None:
                raise ForbiddenDestination(f"{host} is refused: {reason}")

    def check_url(self, url: str) -> tuple[str, int]:
        """Refuse a URL the gateway must never be configured with; returns its (host, port).

        The scheme must be http(s), with a host, no credentials, no query and no fragment
        (``https://evil#.openai.azure.com`` goes to ``evil``). ``ValueError`` says why.
        """
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in SCHEMES:
            raise ValueError("must be an http or https URL")
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:  # a port that is not a number, or out of range
            raise ValueError(f"has an invalid port: {exc}") from exc
        if not host:
            raise ValueError("must name a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials")
        if parts.query or parts.fragment or "#" in url or "?" in url:
            raise ValueError("must not carry a query or a fragment")
        if any(c.isspace() or c == "\\" for c in host):
            raise ValueError("has an invalid host")
        try:
            self.check_host(host)
        except ForbiddenDestination as exc:
            raise ValueError(str(exc)) from exc
        return host, port or (443 if parts.scheme.lower() == "https" else 80)
