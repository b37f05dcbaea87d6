"""Models on the fake OpenAI upstream, registered through the admin API, for chat tests."""

from __future__ import annotations

import re
from typing import Any

import openai

from tests.conftest import Gateway

UPSTREAMS = {
    "gpt-ok": "ok",
    "gpt-tools": "tools",
    "gpt-400": "error-400",
    "gpt-500": "error-500",
    "gpt-429": "error-429",
    "gpt-slow": "slow-3000",
    "gpt-nousage": "nousage",
    "gpt-cut": "cut-3",
    "gpt-drip": "chunkdelay-300",
    "gpt-fixed": "usage-10-10",
}
VENDOR_KEY = "sk-vendor-test-key-1234"


def register_fake_models(gateway: Gateway, base_url: str) -> None:
    for model_id, upstream in UPSTREAMS.items():
        params: dict[str, Any] = {}
        if model_id == "gpt-slow":
            params = {"timeouts": {"first_byte": 0.5}}
        gateway.add_model(
            model_id,
            "OpenAI",
            base_url=base_url,
            api_key=VENDOR_KEY,
            upstream_model=upstream,
            params=params,
        )


def sdk(gateway: Gateway, key: str, retries: int = 0) -> openai.OpenAI:
    return gateway.openai(key, retries)


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    """One sample of the gateway's /metrics (0 when absent)."""
    text = gateway.admin("GET", "/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if got == wanted:
            return float(match.group(3))
    return 0.0
