"""Every setting is declared once: the loader, `Settings.replace` and the README read one table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowart.settings import Settings, markdown_table, settings_table, with_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_tables_are_generated_from_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    assert with_table(text) == text, "README settings are stale: run `make settings-doc`"
    for row in settings_table():
        assert f"| `{row.env}` |" in markdown_table()


def test_each_variable_lands_in_one_field() -> None:
    rows = settings_table()
    assert len({row.env for row in rows}) == len(rows)
    assert len({(row.group, row.field) for row in rows}) == len(rows)
    defaults = Settings()
    for row in rows:
        assert getattr(getattr(defaults, row.group), row.field) == row.default
        assert row.doc and row.shown


def test_every_variable_is_read_by_from_env() -> None:
    """Set each variable to a value its parser accepts and that differs from the default."""
    probes = {int: "7", float: "7.5", str: "probe", type(None): "x" * 40}
    probes[tuple] = "10.0.0.0/8"  # a list of CIDRs (TRUSTED_PROXIES)
    env = {
        row.env: str(not row.default).lower()
        if type(row.default) is bool
        else probes[type(row.default)]
        for row in settings_table()
        if row.group != "server"
    }
    env["DATABASE_URL"] = "sqlite:///probe.db"
    env |= {"LOG_FORMAT": "json", "REDIS_FAILURE_MODE": "degraded", "JOB_LEASE_S": "20"}
    env |= {"INSTANCE_DEAD_AFTER_S": "70", "CIRCUIT_FAILURE_RATIO": "0.75"}
    env["ROUTING_EXPLORE"] = "0.25"
    env |= {"CURRENCY": "EUR", "BUDGET_TZ": "Europe/Paris"}
    env |= {"BUDGET_WEBHOOK_URL": "https://hooks.example/b"}
    settings = Settings.from_env(env)
    for row in settings_table():
        if row.env in env:
            value = getattr(getattr(settings, row.group), row.field)
            assert value == row.parse(row.env, env[row.env]) != row.default, row.env


def test_replace_names_settings_by_their_variable() -> None:
    settings = Settings().replace(job_poll_s=0.05, redis_url="redis://h", lowart_workdir=Path("/w"))
    assert (settings.jobs.poll_s, settings.redis.url) == (0.05, "redis://h")
    assert settings.key_file == Path("/w/lowart.key")
    assert settings.jobs.lease_s == Settings().jobs.lease_s
    with pytest.raises(TypeError, match="JOB_POLL"):
        Settings().replace(job_poll=1.0)
