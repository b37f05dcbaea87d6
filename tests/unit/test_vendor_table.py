"""The vendor table: one declaration per vendor, found whatever the case of its name."""

from __future__ import annotations

import pytest

from lowart.errors import InvalidRequest
from lowart.model_entry import OperationKind
from lowart.providers import mock
from lowart.providers.registry import VENDORS, VendorTable


def test_vendors_are_found_whatever_the_case_and_unknown_ones_are_refused() -> None:
    table = VendorTable()
    assert table.names() == [vendor.name for vendor in VENDORS]
    assert table.vendor(" comfyUI ").name == "ComfyUI"
    assert table.spelling("MOCK") == "Mock" and table.spelling("Nope") == "Nope"
    with pytest.raises(InvalidRequest, match="vendor_type must be one of OpenAI, Anthropic"):
        table.vendor("Nope")


def test_what_each_vendor_serves_comes_from_its_declaration() -> None:
    served = VendorTable().operations()
    assert served["comfyui"] == {OperationKind.CHAT, OperationKind.IMAGES}
    assert served["openai"] == served["mock"] == {OperationKind.CHAT, OperationKind.EMBEDDINGS}
    assert served["anthropic"] == {OperationKind.CHAT}


def test_a_vendor_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="Mock is declared twice"):
        VendorTable((*VENDORS, mock.VENDOR))
