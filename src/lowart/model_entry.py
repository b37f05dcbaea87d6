"""What a request can be routed to, read on the hot path: a model as the directory holds it
(vendor, upstream, timeouts, how the vendor is reached, the kinds of operation its vendor
serves), and its deployments when it has more than one (docs/api.md, "Deployments")."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

from lowart.errors import InvalidRequest
from lowart.money import Price

DEFAULT_CONNECT_S = 10.0
DEFAULT_IDLE_S = 120.0


class OperationKind(StrEnum):
    """A kind of operation a vendor serves (its declaration in ``providers/``)."""

    CHAT = "chat"
    IMAGES = "images"
    EMBEDDINGS = "embeddings"


CHAT_ONLY = frozenset({OperationKind.CHAT})


def kinds_of(params: dict[str, Any], served: frozenset[OperationKind]) -> frozenset[OperationKind]:
    """What a model serves: ``params.kinds`` (a list of ``chat``, ``images``, ``embeddings``)
    narrows what its vendor serves (an OpenAI-compatible server with chat only, say), and can
    never claim what the vendor cannot (docs/api.md, "Admin: models and fallbacks")."""
    kinds = params.get("kinds")
    if kinds is None:
        return served
    names = {kind.value for kind in OperationKind}
    if not isinstance(kinds, list) or not kinds or not all(k in names for k in kinds):
        raise InvalidRequest(
            f"params.kinds must be a non-empty list of {', '.join(sorted(names))}.",
            param="params.kinds",
        )
    wanted = frozenset(OperationKind(k) for k in kinds)
    if not wanted <= served:
        missing = sorted(k.value for k in wanted - served)
        raise InvalidRequest(
            f"params.kinds: this vendor cannot serve {', '.join(missing)}.", param="params.kinds"
        )
    return wanted


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-attempt timeouts in seconds."""

    connect: float
    first_byte: float
    idle: float
    total: float


@dataclass(frozen=True, slots=True)
class Access:
    """How an OpenAI-compatible vendor is reached (``params.auth_header`` and ``params.query``,
    docs/api.md "OpenAI-compatible vendors"), worked out once when the directory loads the model."""

    auth_header: str | None = None  # carries the key as it is; None: ``Authorization: Bearer``
    query: str = ""  # appended to every URL: "" or "?api-version=2024-10-21"
    responses: bool = False  # ``params.wire: "responses"``: Responses requests relayed natively


DEFAULT_ACCESS = Access()
DEFAULT_DEPLOYMENT = "default"  # the model's own columns


class Strategy(StrEnum):
    """How a model with several deployments picks one (docs/api.md, "Deployments")."""

    WEIGHTED = "weighted"
    LEAST_IN_FLIGHT = "least_in_flight"
    LATENCY = "latency"
    PRIORITY = "priority"


@dataclass(frozen=True, slots=True)
class Routing:
    """A model's deployments (its own first, then the enabled rows of ``deployments`` by id),
    the strategy that orders them, and whether a conversation sticks to one."""

    strategy: Strategy
    sticky: bool
    deployments: tuple[ModelEntry, ...]
    cumulative: tuple[float, ...] = field(init=False)  # running sums of their weights

    def __post_init__(self) -> None:
        sums = tuple(itertools.accumulate(d.weight for d in self.deployments))
        object.__setattr__(self, "cumulative", sums)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A routable model with its vendor key already decrypted."""

    model_id: str
    vendor: str  # the vendor's lower-case key (providers/registry.py)
    base_url: str
    api_key: str | None
    upstream_model: str
    params: dict[str, Any]
    timeouts: Timeouts
    enabled: bool
    created: int = 0  # Unix seconds
    operations: frozenset[OperationKind] = CHAT_ONLY  # what its vendor serves
    access: Access = DEFAULT_ACCESS
    deployment: str = DEFAULT_DEPLOYMENT  # which of the model's deployments this is
    health_key: str = ""  # its circuit, caps and health: the model id, or "<model>/<deployment>"
    weight: float = 1.0
    rpm_cap: int | None = None
    tpm_cap: int | None = None
    routing: Routing | None = None  # on the model's own entry, when it has several deployments
    pooled: bool = False  # one of several deployments of its model: its health is tracked
    guarded: bool = False  # pooled or capped: checked before each attempt (set below)

    def __post_init__(self) -> None:
        if not self.health_key:  # the default deployment's breaker is the model's own
            object.__setattr__(self, "health_key", self.model_id)
        capped = self.rpm_cap is not None or self.tpm_cap is not None
        object.__setattr__(self, "guarded", self.pooled or capped)

    prices: tuple[Price, ...] = ()  # oldest first; none: the model is unpriced (costs 0)


def _seconds(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def timeouts_of(params: dict[str, Any], total: float) -> Timeouts:
    """``params.timeouts`` with defaults: connect 10 s, first byte = total, idle 120 s."""
    raw = params.get("timeouts")
    spec = raw if isinstance(raw, dict) else {}
    total = total if total > 0 else 600.0
    return Timeouts(
        connect=min(_seconds(spec.get("connect"), DEFAULT_CONNECT_S), total),
        first_byte=min(_seconds(spec.get("first_byte"), total), total),
        idle=min(_seconds(spec.get("idle"), DEFAULT_IDLE_S), total),
        total=total,
    )


ACCESS_PARAMS = ("auth_header", "query", "wire")
WIRES = ("chat", "responses")
MAX_QUERY_PARAMS = 16
MAX_QUERY_CHARS = 256  # a query parameter's name or value
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
_GATEWAY_OWNED = frozenset(
    {  # hop-by-hop headers and those the gateway's HTTP client writes itself
        "host", "content-length", "content-type", "content-encoding", "transfer-encoding",
        "connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection",
        "te", "trailer", "upgrade", "expect", "accept", "accept-encoding", "cookie",
    }
)  # fmt: skip


def _auth_header(value: object) -> str | None:
    if value is None:
        return None
    name = value.lower() if isinstance(value, str) else ""
    if not _TOKEN.fullmatch(name) or name in _GATEWAY_OWNED:
        raise InvalidRequest(
            "params.auth_header must be an HTTP header name (up to 64 characters) that the "
            "gateway does not write itself, such as api-key.",
            param="params.auth_header",
        )
    return None if name == "authorization" else name


def _query_text(value: object) -> str | None:
    """A query parameter's name or value as sent, or None when it cannot be one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value) if isinstance(value, str | int | float) else None
    if text is None or not 0 < len(text) <= MAX_QUERY_CHARS:
        return None
    return None if any(c in text for c in "\r\n\0") else text


def _query(value: object) -> str:
    if value is None:
        return ""
    pairs: list[tuple[str, str]] = []
    for name, item in value.items() if isinstance(value, dict) else [(None, None)]:
        key, text = _query_text(name), _query_text(item)
        if key is None or text is None or len(pairs) == MAX_QUERY_PARAMS:
            raise InvalidRequest(
                f"params.query must be an object of at most {MAX_QUERY_PARAMS} query parameters, "
                f"each name and value a string, number or boolean of 1 to {MAX_QUERY_CHARS} "
                "characters with no line breaks or NUL.",
                param="params.query",
            )
        pairs.append((key, text))
    return "?" + urlencode(pairs, quote_via=quote) if pairs else ""


def access_of(params: dict[str, Any]) -> Access:
    """``params.auth_header`` and ``params.query`` checked and prepared (InvalidRequest, its
    ``param`` naming the one at fault, when either cannot be sent)."""
    auth_header, query = _auth_header(params.get("auth_header")), _query(params.get("query"))
    wire = params.get("wire", "chat")
    if wire not in WIRES:
        raise InvalidRequest("params.wire must be 'chat' or 'responses'.", param="params.wire")
    if auth_header is None and not query and wire == "chat":
        return DEFAULT_ACCESS
    return Access(auth_header=auth_header, query=query, responses=wire == "responses")
