"""A model's deployments in the directory: built from ``deployments`` rows, their keys opened
with their own context, the unusable ones left out (docs/api.md, "Deployments")."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from lowart.catalog.entries import check_routing_params, strategy_of
from lowart.errors import InvalidRequest
from lowart.model_entry import Strategy
from lowart.storage.rows import DeploymentRow, Snapshot
from lowart.storage.sealed import deployment_key_context, vendor_key_context
from tests.unit.test_directory import BOX, directory, model


def deployment(deployment_id: str, **fields: Any) -> DeploymentRow:
    values: dict[str, Any] = {
        "vendor_type": "OpenAI",
        "base_url": "https://b.example.com/v1/",
        "api_key": None,
        "upstream_model": None,
        "params": {},
        "weight": 1.0,
        "enabled": True,
        "rpm_cap": None,
        "tpm_cap": None,
    }
    return DeploymentRow(model_id="m", id=deployment_id, **(values | fields))


def snap(*rows: DeploymentRow, **model_fields: Any) -> Snapshot:
    own = model("m", api_key=BOX.encrypt("sk-own", vendor_key_context("m")), **model_fields)
    return Snapshot(users=(), keys=(), models=(own,), fallbacks=(), deployments=rows)


def test_a_model_without_deployments_has_no_routing() -> None:
    entry = directory(snap()).model("m")
    assert entry is not None and entry.routing is None
    assert (entry.deployment, entry.health_key) == ("default", "m")


def test_deployments_join_the_model_in_order_with_their_own_upstream_and_key() -> None:
    sealed = BOX.encrypt("sk-b", deployment_key_context("m", "b"))
    params = {"strategy": "priority", "sticky": True, "weight": 2, "rpm_cap": 10}
    entry = directory(
        snap(
            deployment("c", upstream_model="up-c", weight=0.5, tpm_cap=1000),
            deployment("b", api_key=sealed, rpm_cap=5),
            deployment("off", enabled=False),
            params=params,
        )
    ).model("m")
    assert entry is not None and entry.routing is not None
    assert entry.routing.strategy is Strategy.PRIORITY and entry.routing.sticky
    own, c, b = entry.routing.deployments
    assert (own.deployment, own.weight, own.rpm_cap, own.api_key) == ("default", 2.0, 10, "sk-own")
    assert (b.deployment, b.health_key, b.api_key, b.rpm_cap) == ("b", "m/b", "sk-b", 5)
    assert (b.base_url, b.upstream_model, b.model_id) == ("https://b.example.com/v1", "m", "m")
    assert (c.upstream_model, c.weight, c.tpm_cap) == ("up-c", 0.5, 1000)


def test_unusable_deployments_are_left_out_and_logged() -> None:
    copied = BOX.encrypt("sk-b", deployment_key_context("m", "other"))  # sealed for another row
    with capture_logs() as logs:
        entry = directory(
            snap(
                deployment("b", api_key=copied),
                deployment("c", vendor_type="ComfyUI"),  # serves images, not chat
                deployment("d", params={"query": "not-an-object"}),
            )
        ).model("m")
    assert entry is not None and entry.routing is None
    events = {e["event"] for e in logs}
    assert {"model_api_key_undecryptable", "deployment_vendor_unfit"} <= events
    assert "model_params_invalid" in events


def test_routing_params_are_checked() -> None:
    assert strategy_of({}) is Strategy.WEIGHTED
    assert strategy_of({"strategy": "latency"}) is Strategy.LATENCY
    assert strategy_of({"strategy": "bogus"}) is Strategy.WEIGHTED  # a row edited by hand
    check_routing_params({"strategy": "least_in_flight", "sticky": False, "weight": 0})
    for bad in (
        {"strategy": "fastest"},
        {"sticky": "yes"},
        {"weight": -1},
        {"rpm_cap": 0},
        {"tpm_cap": 1.5},
    ):
        with pytest.raises(InvalidRequest) as caught:
            check_routing_params(bad)
        assert caught.value.param == "params." + next(iter(bad))
