"""Vendor type → adapter. A new vendor is one module and one line here."""

from __future__ import annotations

from lowart.providers.anthropic import AnthropicProvider
from lowart.providers.base import Provider
from lowart.providers.comfyui import ComfyUIProvider
from lowart.providers.http import Transport
from lowart.providers.mock import MockProvider
from lowart.providers.openai import OpenAIProvider


def build_providers(transport: Transport, comfyui: ComfyUIProvider) -> dict[str, Provider]:
    """The adapters by lower-case vendor type."""
    return {
        "openai": OpenAIProvider(transport),
        "anthropic": AnthropicProvider(transport),
        "comfyui": comfyui,
        "mock": MockProvider(),
    }
