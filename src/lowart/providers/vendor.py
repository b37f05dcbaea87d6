"""What a vendor declares about itself: one ``Vendor`` in its module, listed in the registry.

The declaration is the only place a vendor's facts live: its ``vendor_type`` spelling, the wire
format it speaks, the kinds of operation it serves, how a model's ``base_url`` and ``params``
are checked, and how its provider is built. The registry, the admin validation (API and CLI),
the OpenAPI schema and first-run bootstrap all read it (docs/api.md, "Admin: models and fallbacks").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from lowart.errors import InvalidRequest
from lowart.model_entry import ACCESS_PARAMS, CHAT_ONLY, OperationKind, access_of, kinds_of
from lowart.providers.base import Provider
from lowart.providers.http import Transport
from lowart.security.connect_guard import vet_url
from lowart.security.signing import UrlSigner
from lowart.security.ssrf import DestinationPolicy
from lowart.storage.filestore import FileStore


@dataclass(frozen=True, slots=True)
class ProviderParts:
    """The gateway's shared parts a vendor's provider may be built from."""

    transport: Transport  # JSON over the shared upstream session, bodies capped
    session: aiohttp.ClientSession  # the shared, SSRF-guarded upstream session
    files: FileStore  # where generated outputs are stored
    signer: UrlSigner  # signs the URLs of stored outputs
    embeddings_max_answer: int  # EMBEDDINGS_MAX_ANSWER_BYTES: an embeddings answer read whole


@dataclass(frozen=True, slots=True)
class BaseUrl:
    """How a model's ``base_url`` is checked. A URL given is always an absolute http(s) URL the
    SSRF policy allows (``UPSTREAM_ALLOW_PRIVATE``); without one, ``default`` is stored when the
    vendor needs none, and the request is refused when it does."""

    required: bool = True
    default: str = ""


@dataclass(frozen=True, slots=True)
class RequiredParam:
    """A key a model's ``params`` must hold: a non-empty JSON object."""

    name: str
    holds: str  # what it holds, for the refusal: "its graph in ComfyUI's API format"


@dataclass(frozen=True, slots=True)
class Vendor:
    """One vendor's declaration."""

    name: str  # the ``vendor_type`` spelling; matched whatever the case given
    native: str  # the wire format it speaks: OPENAI or ANTHROPIC (its provider's ``native``)
    build: Callable[[ProviderParts], Provider]
    operations: frozenset[OperationKind] = CHAT_ONLY
    base_url: BaseUrl = BaseUrl()
    params: tuple[RequiredParam, ...] = ()
    starter_model: str | None = None  # a model of this vendor that first run registers
    access: bool = False  # whether a model's params may set auth_header and query (OpenAI's)

    @property
    def key(self) -> str:
        """The lower-case key models are routed by."""
        return self.name.lower()

    async def check_base_url(self, base_url: str, destinations: DestinationPolicy) -> str:
        """The ``base_url`` to store: checked by this declaration and the SSRF policy."""
        base_url = base_url.strip()
        if not base_url:
            if not self.base_url.required:
                return self.base_url.default
            raise InvalidRequest(f"base_url is required for vendor {self.name}.", param="base_url")
        try:
            await vet_url(destinations, base_url)
        except ValueError as exc:
            raise InvalidRequest(f"base_url {exc}.", param="base_url") from exc
        return base_url.rstrip("/")

    def check_params(self, params: object) -> None:
        """Refuse ``params`` without a key this vendor needs (every call on it would fail), and
        ``auth_header`` or ``query`` that cannot be sent or that this vendor would not use."""
        if isinstance(params, dict) and self.access:
            access_of(params)
        elif isinstance(params, dict) and (unused := [k for k in ACCESS_PARAMS if k in params]):
            raise InvalidRequest(
                f"params.{unused[0]} applies to OpenAI-compatible models only.",
                param=f"params.{unused[0]}",
            )
        if isinstance(params, dict):
            kinds_of(params, self.operations)
        for needed in self.params:
            value = params.get(needed.name) if isinstance(params, dict) else None
            if not isinstance(value, dict) or not value:
                raise InvalidRequest(
                    f"A {self.name} model needs params.{needed.name}: {needed.holds}.",
                    param="params",
                )
