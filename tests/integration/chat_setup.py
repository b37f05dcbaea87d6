"""Models on the fake OpenAI upstream, registered through the admin API, for chat tests."""

from __future__ import annotations

from typing import Any

import openai
from prometheus_client.parser import text_string_to_metric_families

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
    """The sum of the gateway's /metrics samples named ``name`` that carry ``labels`` (0 when
    there is none): ``model="a"`` alone counts every ``served_model`` of ``a``."""
    text = gateway.admin("GET", "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
