"""A new vendor is one module and one line: a vendor declared in this test and added to the
table in one line is served, validated and documented like the built-in ones."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import httpx

from lowart.formats.ids import OPENAI
from lowart.model_entry import ModelEntry
from lowart.providers.base import ChatRequest, ChatStream, Completion
from lowart.providers.mock import MockProvider
from lowart.providers.registry import VENDORS, VendorTable
from lowart.providers.vendor import BaseUrl, RequiredParam, Vendor
from tests.conftest import Gateway

GREETING = "Polly wants a cracker"


class ParrotProvider:
    """Says its model's ``params.phrasebook.greeting`` whatever it is told (Mock underneath)."""

    native = OPENAI

    def __init__(self) -> None:
        self._mock = MockProvider()

    @staticmethod
    def _speaking(model: ModelEntry) -> ModelEntry:
        return dataclasses.replace(model, params={"text": model.params["phrasebook"]["greeting"]})

    async def complete(self, model: ModelEntry, request: ChatRequest) -> Completion:
        return await self._mock.complete(self._speaking(model), request)

    async def open_stream(self, model: ModelEntry, request: ChatRequest) -> ChatStream:
        return await self._mock.open_stream(self._speaking(model), request)


PARROT = Vendor(
    name="Parrot",
    native=ParrotProvider.native,
    build=lambda _parts: ParrotProvider(),
    base_url=BaseUrl(required=True),
    params=(RequiredParam("phrasebook", "what the parrot says"),),
)


def _refusal(gw: Gateway, **body: Any) -> tuple[int, dict[str, Any]]:
    response = gw.admin("POST", "/admin/models", json={"model_id": "polly", **body})
    return response.status_code, response.json()["error"]


def _check_validated(gw: Gateway) -> None:
    phrasebook = {"phrasebook": {"greeting": GREETING}}
    status, error = _refusal(gw, vendor_type="parrot", params=phrasebook)
    assert (status, error["param"]) == (400, "base_url")
    assert error["message"] == "base_url is required for vendor Parrot."
    status, error = _refusal(
        gw, vendor_type="parrot", base_url="ftp://127.0.0.1/", params=phrasebook
    )
    assert (status, error["param"]) == (400, "base_url")
    status, error = _refusal(gw, vendor_type=" PARROT ", base_url="http://127.0.0.1:9", params={})
    assert (status, error["param"]) == (400, "params")
    assert error["message"] == "A Parrot model needs params.phrasebook: what the parrot says."
    status, error = _refusal(gw, vendor_type="Macaw", base_url="http://127.0.0.1:9")
    assert "Parrot" in error["message"] and error["param"] == "vendor_type"
    added = gw.add_model("polly", " PARROT ", base_url="http://127.0.0.1:9/", params=phrasebook)
    assert (added["vendor_type"], added["base_url"]) == ("Parrot", "http://127.0.0.1:9")


def _vendor_pattern(schema: dict[str, Any]) -> str:
    return str(schema["properties"]["vendor_type"]["pattern"])


def _rule_for(rules: list[dict[str, Any]], vendor: str) -> dict[str, Any]:
    matching = [
        r for r in rules if re.search(r["if"]["properties"]["vendor_type"]["pattern"], vendor)
    ]
    assert len(matching) == 1, rules
    return matching[0]


def _check_documented(gw: Gateway) -> None:
    schemas = httpx.get(gw.url + "/openapi.json").json()["components"]["schemas"]
    create, replace = schemas["ModelCreate"], schemas["ModelReplace"]
    for schema in (create, replace):
        pattern = schema["properties"]["vendor_type"]["pattern"]
        assert re.search(pattern, " parrot ") and not re.search(pattern, "macaw")
        params = _rule_for(schema["allOf"], "Parrot")["then"]["properties"]["params"]
        assert params["required"] == ["phrasebook"]
    base_url = _rule_for(create["allOf"], "Mock")  # the vendors that need no base_url
    assert not re.search(_vendor_pattern(base_url["if"]), "Parrot")


def test_a_vendor_of_one_module_and_one_line_is_validated_served_and_documented(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(vendors=VendorTable((*VENDORS, PARROT)))
    _check_validated(gw)
    key = gw.create_user()
    chat = gw.openai(key).chat.completions.create(
        model="polly", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert chat.choices[0].message.content == GREETING
    streamed = gw.anthropic(key).messages.create(  # the other format: translated from OpenAI's
        model="polly", max_tokens=32, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    text = "".join(e.delta.text for e in streamed if e.type == "content_block_delta")
    assert text == GREETING
    _check_documented(gw)
