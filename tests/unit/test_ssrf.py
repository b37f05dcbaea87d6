"""The SSRF policy (security/ssrf.py) on the S10 corpus, and the registration check's DNS step."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from lowart.security.connect_guard import vet_url
from lowart.security.ssrf import DestinationPolicy, ForbiddenDestination

OPEN = DestinationPolicy(allow_private=True)
STRICT = DestinationPolicy(allow_private=False)

# Refused whatever the setting: link-local, metadata, unspecified, odd forms, other schemes.
ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.1.1:8080/v1",
    "http://[fe80::1]/v1",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://192.0.0.192/",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://METADATA.GOOGLE.INTERNAL./",
    "http://metadata/",
    "http://instance-data/",
    "http://0.0.0.0:8000/v1",
    "http://[::]/v1",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/",
    "dict://127.0.0.1:11211/",
    "http://user@example.com/",
    "http://user:pass@example.com/",
    "https://evil#.openai.azure.com",
    "https://evil?.openai.azure.com",
    "http:///v1",
    "http://example.com:99999/",
    "not a url",
]
# Allowed by default (local vLLM and ComfyUI), refused with UPSTREAM_ALLOW_PRIVATE=false.
PRIVATE = [
    "http://127.0.0.1:8000/v1",
    "http://localhost:8188",
    "http://[::1]:8000/v1",
    "http://[::ffff:127.0.0.1]/v1",
    "http://10.0.0.1/v1",
    "http://172.16.0.1/v1",
    "http://192.168.1.10:8188",
    "http://100.64.0.1/v1",
    "http://[fd12:3456::1]/v1",
]
PUBLIC = ["https://api.openai.com/v1", "https://api.anthropic.com", "http://93.184.215.14/v1"]


class FakeResolver(AbstractResolver):
    """Names to addresses, like a DNS that the test controls."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(f"{host}: unknown")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        return None


NO_DNS = FakeResolver({"localhost": ["127.0.0.1", "::1"]})


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
@pytest.mark.parametrize("policy", [OPEN, STRICT], ids=["open", "strict"])
async def test_always_refused(url: str, policy: DestinationPolicy) -> None:
    with pytest.raises(ValueError):
        await vet_url(policy, url, NO_DNS)


@pytest.mark.parametrize("url", PRIVATE)
async def test_private_is_a_setting(url: str) -> None:
    await vet_url(OPEN, url, NO_DNS)
    with pytest.raises(ValueError, match="UPSTREAM_ALLOW_PRIVATE"):
        await vet_url(STRICT, url, NO_DNS)


@pytest.mark.parametrize("url", PUBLIC)
async def test_public_is_allowed(url: str) -> None:
    await vet_url(STRICT, url, NO_DNS)  # an unresolvable name passes: connect time decides


async def test_a_name_resolving_to_a_refused_address_is_refused_at_registration() -> None:
    dns = FakeResolver(
        {
            "evil.test": ["93.184.215.14", "169.254.169.254"],
            "inside.test": ["10.1.2.3"],
            "fine.test": ["93.184.215.14"],
        }
    )
    with pytest.raises(ValueError, match="metadata"):
        await vet_url(OPEN, "http://evil.test/v1", dns)
    await vet_url(OPEN, "http://inside.test/v1", dns)
    with pytest.raises(ValueError, match="private"):
        await vet_url(STRICT, "http://inside.test/v1", dns)
    await vet_url(STRICT, "https://fine.test/v1", dns)


def test_addresses_as_connect_time_sees_them() -> None:
    OPEN.check_address("h", "93.184.215.14")
    OPEN.check_address("h", "127.0.0.1")
    OPEN.check_address("h", "2606:2800:220:1::1")
    for address in ("169.254.169.254", "fe80::1%eth0", "::ffff:169.254.169.254", "0.0.0.0"):
        with pytest.raises(ForbiddenDestination):
            OPEN.check_address("h", address)
    with pytest.raises(ForbiddenDestination):
        STRICT.check_address("h", "::1")
    with pytest.raises(ForbiddenDestination, match="not an IP address"):
        OPEN.check_address("h", "nonsense")
    assert isinstance(ForbiddenDestination("x"), OSError)  # reported as a failed connection
