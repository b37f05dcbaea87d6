"""The vendor table. A new vendor is one module declaring its ``Vendor`` and one line in
``VENDORS`` (docs/api.md, "Admin: models and fallbacks"); everything else reads the table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from lowart.errors import InvalidRequest
from lowart.model_entry import OperationKind
from lowart.providers import anthropic, comfyui, mock, openai
from lowart.providers.base import Provider
from lowart.providers.vendor import ProviderParts, Vendor

VENDORS: tuple[Vendor, ...] = (
    openai.VENDOR,
    anthropic.VENDOR,
    comfyui.VENDOR,
    mock.VENDOR,
)


class VendorTable:
    """The vendors one gateway serves, by their lower-case key (``VENDORS`` unless given)."""

    def __init__(self, vendors: Iterable[Vendor] = VENDORS) -> None:
        self._by_key: dict[str, Vendor] = {}
        for vendor in vendors:
            if vendor.key in self._by_key:
                raise ValueError(f"vendor {vendor.name} is declared twice")
            self._by_key[vendor.key] = vendor

    def __iter__(self) -> Iterator[Vendor]:
        return iter(self._by_key.values())

    def names(self) -> list[str]:
        """The ``vendor_type`` spellings, in declaration order."""
        return [vendor.name for vendor in self]

    def find(self, vendor_type: str) -> Vendor | None:
        """The vendor a stored or given ``vendor_type`` names, whatever its case."""
        return self._by_key.get(vendor_type.strip().lower())

    def vendor(self, vendor_type: str) -> Vendor:
        """The vendor a request names, or a 400 listing the ones there are."""
        vendor = self.find(vendor_type)
        if vendor is None:
            raise InvalidRequest(
                f"vendor_type must be one of {', '.join(self.names())}.", param="vendor_type"
            )
        return vendor

    def spelling(self, vendor_type: str) -> str:
        """How the table spells a stored ``vendor_type`` (as stored when unknown)."""
        vendor = self._by_key.get(vendor_type.lower())
        return vendor_type if vendor is None else vendor.name

    def operations(self) -> Mapping[str, frozenset[OperationKind]]:
        """What each vendor serves, by key: the directory routes only these vendors' models."""
        return {key: vendor.operations for key, vendor in self._by_key.items()}

    def providers(self, parts: ProviderParts) -> dict[str, Provider]:
        """Every vendor's provider, built from the gateway's shared parts, by key."""
        return {key: vendor.build(parts) for key, vendor in self._by_key.items()}
