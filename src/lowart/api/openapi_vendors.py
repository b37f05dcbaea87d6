"""The model bodies' rules that come from the vendor table, as JSON Schema: the ``vendor_type``
spellings, which vendors need a ``base_url``, and the ``params`` each needs. Each vendor declares
them once (``providers/vendor.py``); the admin API checks them from the same declaration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lowart.providers.registry import VendorTable
from lowart.providers.vendor import Vendor

Schema = dict[str, Any]


def caseless(word: str) -> str:
    """A pattern matching ``word`` whatever the case of its letters."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# What Vendor.check_base_url takes: an absolute http(s) URL with a host and no credentials.
BASE_URL_PATTERN = r"^\s*" + caseless("http") + r"[sS]?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?(/\S*)?\s*$"


def named(names: Iterable[str]) -> str:
    """A pattern matching any of ``names``, whatever the case, with blanks around."""
    return r"^\s*(" + "|".join(caseless(name) for name in names) + r")\s*$"


def vendor_type(vendors: VendorTable) -> Schema:
    return {"type": "string", "pattern": named(vendors.names())}


def base_url_rule(vendors: VendorTable) -> Schema:
    """A URL, or (for vendors that need none) blank or absent."""
    required: Schema = {
        "required": ["base_url"],
        "properties": {"base_url": {"pattern": BASE_URL_PATTERN}},
    }
    optional = [vendor.name for vendor in vendors if not vendor.base_url.required]
    if not optional:
        return required
    return {
        "if": {"properties": {"vendor_type": {"pattern": named(optional)}}},
        "then": {
            "properties": {
                "base_url": {"anyOf": [{"pattern": r"^\s*$"}, {"pattern": BASE_URL_PATTERN}]}
            }
        },
        "else": required,
    }


def _params_rule(vendor: Vendor) -> Schema:
    needed = [param.name for param in vendor.params]
    return {
        "if": {
            "required": ["vendor_type"],
            "properties": {"vendor_type": {"pattern": named([vendor.name])}},
        },
        "then": {
            "required": ["params"],
            "properties": {
                "params": {
                    "type": "object",
                    "required": needed,
                    "properties": {name: {"type": "object", "minProperties": 1} for name in needed},
                }
            },
        },
    }


def params_rules(vendors: VendorTable) -> list[Schema]:
    """For each vendor that needs some ``params`` (ComfyUI's workflow), the rule saying so."""
    return [_params_rule(vendor) for vendor in vendors if vendor.params]
