"""Admin routes for a model's prices (docs/api.md, "Prices and cost")."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, in_path
from lowart.api.asgi import parse_object
from lowart.api.bodies import parse_time
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.errors import InvalidRequest, NotFound
from lowart.money import PRICE_FIELDS, Price, decimal_string, parse_amount, price_at
from lowart.storage.audit_states import PRICES
from lowart.storage.models import ModelRepository
from lowart.storage.prices import PriceRepository
from lowart.storage.rows import iso_seconds

Refresh = Callable[[], Awaitable[None]]
_KNOWN = frozenset({*PRICE_FIELDS, "effective_from", "currency"})


def price_json(price: Price) -> dict[str, Any]:
    """A price as JSON: amounts as decimal strings, never floats."""
    amounts = {name: decimal_string(getattr(price, name)) for name in PRICE_FIELDS}
    return {"effective_from": iso_seconds(price.effective_from), **amounts}


def pricing_json(prices: tuple[Price, ...], now: float) -> dict[str, Any]:
    """A model's standing: ``"unpriced"`` (its usage costs 0) or the price in effect now."""
    current = price_at(prices, now)
    if current is None:
        return {"pricing": "unpriced", "price": None}
    return {"pricing": "priced", "price": price_json(current)}


def parse_price(body: dict[str, Any], currency: str, now: float) -> Price:
    """A ``PUT`` body as a price: amounts are decimal strings (or integers) of ``currency``."""
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}'.", param=unknown[0])
    if body.get("currency", currency) != currency:
        raise InvalidRequest(f"Prices are in {currency} (CURRENCY).", param="currency")
    raw_from = body.get("effective_from")
    if raw_from is not None and not isinstance(raw_from, str | int):
        raise InvalidRequest("'effective_from' must be ISO 8601.", param="effective_from")
    effective_from = parse_time(None if raw_from is None else str(raw_from), "effective_from")
    if effective_from is not None and not 0 <= effective_from < 2**35:
        raise InvalidRequest("'effective_from' is out of range.", param="effective_from")
    amounts = {}
    for name in PRICE_FIELDS:
        amount = parse_amount(body.get(name, "0"))
        if amount is None:
            raise InvalidRequest(
                f"'{name}' must be a decimal string such as \"3.75\", at most six decimals.",
                param=name,
            )
        amounts[name] = amount
    return Price(effective_from=now if effective_from is None else effective_from, **amounts)


class PriceAdmin:
    """A model's prices: the history, and a new price from a time on."""

    def __init__(
        self,
        prices: PriceRepository,
        models: ModelRepository,
        refresh: Refresh,
        currency: str,
        *,
        audit: AuditRecorder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._audit = audit
        self._prices = prices
        self._models = models
        self._refresh = refresh
        self._currency = currency
        self._clock = clock

    async def _model_id(self, request: Request) -> str:
        model_id: str = request.path_params["model_id"]
        if await self._models.get(model_id) is None:
            raise NotFound(f"No model '{model_id}'.")
        return model_id

    async def _answer(self, model_id: str) -> JSON:
        history = await self._prices.history(model_id)
        return JSON(
            {
                "model_id": model_id,
                "currency": self._currency,
                **pricing_json(history, self._clock()),
                "history": [price_json(p) for p in history],
            }
        )

    async def get(self, request: Request) -> JSON:
        return await self._answer(await self._model_id(request))

    async def put(self, request: Request) -> JSON:
        model_id = await self._model_id(request)
        price = parse_price(parse_object(await body_of(request)), self._currency, self._clock())
        await self._prices.put(model_id, price)
        await self._refresh()
        return await self._answer(model_id)

    def routes(self) -> list[Route]:
        put = self._audit.audited("prices.set", PRICES, self.put, in_path("model_id"))
        return [route("/admin/models/{model_id}/prices", GET=self.get, PUT=put)]
