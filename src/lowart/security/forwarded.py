"""The client's address behind trusted reverse proxies (docs/operations.md, "Admin audit log").

The peer is the client unless it is a trusted proxy (``TRUSTED_PROXIES``); then the proxies'
``X-Forwarded-For`` list is read from the right (the hop nearest the gateway) and the first
address that is not a trusted proxy is the client. Addresses further left were written by the
client itself and prove nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_HOP = 64  # an address longer than any IPv6 text is not an address: cut it in the record


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address: ``peer``, or the first untrusted hop of ``forwarded_for`` (each
    header value a comma-separated list) from the right, when ``peer`` is a trusted proxy."""
    if peer is None or not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:_MAX_HOP]
    return hops[0][:_MAX_HOP] if hops else peer
