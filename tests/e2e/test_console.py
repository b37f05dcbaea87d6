"""The web console end to end: Debian's Chromium, driven by playwright-core from Node
(``web/e2e/console.mjs``), against the real gateway on a real socket, the example MCP server and
the fake ComfyUI.

The browser script plays the people and reports what their screens showed; this test checks that
report and the gateway's own state. Its screenshots go to the test's temporary directory; with
``UI_DOCS=1`` they replace the ones ``docs/ui.md`` links (``UI_DOCS=1 make test``), so a plain
test run never changes tracked files.
``make test`` installs what it needs first: Chromium from Debian's packages, the npm packages and
the built console (``make install``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lowart.testing.comfyui_fake import FakeComfyUI, ThreadedComfyUI
from tests.conftest import ADMIN_KEY, Gateway

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "web" / "e2e" / "console.mjs"
DOC_SCREENSHOTS = ROOT / "docs" / "ui"
DOC = ROOT / "docs" / "ui.md"
CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = ROOT / "examples" / "mcp_weather.py"
HOSTILE = 'Alice <b>bold</b> <img src=x onerror="document.title=1">'
PROMPT = "Hello from the console, one word at a time"
PARIS = "Tool said: It is 18C and sunny in Paris."
VIEWS = (
    "signin",
    "admin-users",
    "admin-models",
    "admin-tools",
    "admin-usage",
    "admin-spend",
    "admin-audit",
    "usage",
    "playground",
    "inbox",
    "jobs",
)
WORKFLOW: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": "{{batch_size}}"},
    },
    "2": {
        "class_type": "KSampler",
        "inputs": {"seed": "{{seed}}", "steps": 10, "cfg": 7.0, "model": ["1", 0]},
    },
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["1", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ui"}},
}
TIMEOUT_S = 110


@pytest.fixture
def comfy() -> Iterator[ThreadedComfyUI]:
    with FakeComfyUI.in_thread(fake=FakeComfyUI(step_delay=0.3)) as served:
        yield served


def screenshot_dir(tmp_path: Path, env: Mapping[str, str]) -> Path:
    """Where the screenshots go: ``docs/ui`` only when asked for (``UI_DOCS=1``)."""
    if env.get("UI_DOCS", "0").strip() == "1":
        return DOC_SCREENSHOTS
    return tmp_path / "screenshots"


def test_screenshots_replace_the_documented_ones_only_on_request(tmp_path: Path) -> None:
    assert screenshot_dir(tmp_path, {}) == tmp_path / "screenshots"
    assert screenshot_dir(tmp_path, {"UI_DOCS": "0"}) == tmp_path / "screenshots"
    assert screenshot_dir(tmp_path, {"UI_DOCS": "1"}) == DOC_SCREENSHOTS
    assert not screenshot_dir(tmp_path, {}).is_relative_to(ROOT)


def _prerequisites() -> str:
    """Node and the browser: missing ones fail the test with the command that installs them."""
    node = shutil.which("node")
    assert node, "Node.js is required for the console's browser tests"
    assert CHROMIUM.exists(), (
        "Chromium is missing: `make test` installs it (apt-get install chromium)"
    )
    assert (ROOT / "web" / "node_modules" / "playwright-core").is_dir(), "run `make install`"
    assert (ROOT / "src" / "lowart" / "ui" / "dist" / "index.html").is_file(), "run `make install`"
    return node


def _run_browser(node: str, config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "console-e2e.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [node, str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT / "web",
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, f"browser script failed:\n{done.stderr}\n{done.stdout[-4000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    (tmp_path / "console-report.json").write_text(json.dumps(report, indent=2))  # for a look
    return report


def test_the_console_end_to_end(
    make_gateway: Callable[..., Gateway], comfy: ThreadedComfyUI, tmp_path: Path
) -> None:
    node = _prerequisites()
    gw = make_gateway(job_poll_s=0.05, request_log=True)
    # What the console's own forms do not cover: a Mock model that calls a tool, an image model,
    # and a user with no quota left.
    gw.add_model(
        "weather-bot",
        "Mock",
        params={"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    )
    gw.add_model(
        "sd",
        "ComfyUI",
        base_url=comfy.base_url,
        params={"workflow": WORKFLOW, "defaults": {"size": "64x64"}},
    )
    carol = gw.create_user("carol", token_quota=0)
    # Money: the tool model and the image model are priced; a team with a monthly budget (alice
    # joins it in the browser script, once the admin has created her) and one with a weekly one.
    for model_id, prices in (
        ("weather-bot", {"input": "2.50", "output": "10"}),
        ("sd", {"image": "0.04"}),
    ):
        assert gw.admin("PUT", f"/admin/models/{model_id}/prices", json=prices).status_code == 200
    for team_id, budget, period in (("studio", "1.00", "month"), ("ops", "2.00", "week")):
        body = {"team_id": team_id, "budget": budget, "budget_period": period}
        assert gw.admin("POST", "/admin/teams", json=body).status_code == 201
    shots = screenshot_dir(tmp_path, os.environ)
    documented = {p.name: p.stat().st_mtime_ns for p in DOC_SCREENSHOTS.iterdir()}

    report = _run_browser(
        node,
        {
            "url": gw.url,
            "chromium": str(CHROMIUM),
            "screenshots": str(shots),
            "failures": str(tmp_path),
            "admin_key": ADMIN_KEY,
            "carol_key": carol,
            "hostile_name": HOSTILE,
            "chat_prompt": PROMPT,
            "vendor_key": "sk-console-test-9876",
            "mcp_command": sys.executable,
            "mcp_args": [str(EXAMPLE)],
            "team_id": "studio",
            "alice_budget": {"budget": "0.50", "budget_period": "month"},
        },
        tmp_path,
    )
    seen = report["observations"]

    # Sign-in: a wrong key is a message; the key's role decides the views.
    assert "401" in seen["wrong_key_message"]
    assert seen["admin_role"] == "admin" and seen["user_role"] == "user"
    assert seen["nav_links"] == ["My usage", "Playground", "My jobs", "Confirmations"]

    # The admin created alice; the key shown once is the key copied, and it works.
    assert seen["copied_key"] == seen["shown_key"] and seen["copied_key"].startswith("lw-")
    with gw.client(seen["copied_key"]) as client:
        assert client.get("/v1/usage").json()["user_id"] == "alice"
    alice = gw.admin("GET", "/admin/users/alice").json()
    assert (alice["rpm_limit"], alice["token_quota"], alice["name"]) == (60, 100000, HOSTILE)
    assert seen["hostile_name_text"] == HOSTILE and seen["hostile_elements"] == 0  # text only

    # The Mock model, its write-only vendor key and its fallback.
    model = gw.admin("GET", "/admin/models/mock-stream").json()
    assert (model["vendor_type"], model["params"]) == ("Mock", {"chunk_delay_ms": 40})
    assert model["api_key_last4"] == "9876" and "sk-console" not in seen["model_key_cell"]
    assert gw.admin("GET", "/admin/models/mock-stream/fallbacks").json()["fallbacks"] == ["mock"]
    assert seen["fallbacks_cell"] == "mock"
    assert seen["server_status"] == "running"

    # The transform script editor: the interpreter's refusal with its position, a test run on
    # the sample with the editor's text, and the script deleted from the console again.
    assert "transform.star:1:" in seen["script_error"] and "Parse error" in seen["script_error"]
    assert seen["script_outcome"] == "ok"
    assert json.loads(seen["script_result"])["seen_by"] == "test-user"
    assert gw.admin("GET", "/admin/transforms").json()["data"] == []

    # The key lives in sessionStorage alone, and never in a URL.
    storage = seen["storage"]
    assert storage["session_key"] == seen["copied_key"]
    assert (storage["local_items"], storage["cookie"]) == (0, "")
    assert "lw-" not in storage["url"] and seen["key_in_urls"] == []

    # The playground streamed: the answer grew in pieces, with the serving model and its tokens.
    assert seen["chat_answer"] == PROMPT
    assert len(seen["chat_partials"]) >= 3 and seen["chat_partials"][0] != PROMPT
    assert seen["chat_served"] == "mock-stream" and seen["chat_chunks"] > 3
    assert seen["chat_tokens"] > 0

    # The Responses API: two turns, the second continuing the first by its stored id.
    assert seen["responses_answer"] == "Second turn through Responses"
    assert seen["responses_events"] > 5 and seen["responses_tokens"] > 0
    rows = gw.sql("SELECT id, previous_response_id FROM responses WHERE user_id = 'alice'")
    [(_, first)] = [row for row in rows if row[0] == seen["responses_id"]]
    assert first is not None and (first, None) in rows

    # The usage chart, left open in another tab, rose.
    assert seen["usage_before"] == 0 and seen["usage_after"] >= seen["chat_tokens"]

    # The paused tool call: shown to its owner only, approved there, answered.
    assert "get_weather on weather" in seen["pause_notice"] and seen["pending_badge"] == "1"
    assert (seen["inbox_server"], seen["inbox_tool"]) == ("weather", "get_weather")
    assert json.loads(seen["inbox_arguments"]) == {"city": "Paris"}
    assert seen["inbox_arguments"] == json.dumps({"city": "Paris"}, indent=2)  # pretty-printed
    assert seen["inbox_answer"] == PARIS
    session_id = seen["inbox_session_text"].split()[0]
    assert session_id.startswith("sess_")
    for text in (seen["bob_inbox_before"], seen["bob_inbox_after"]):
        assert "get_weather" not in text and session_id not in text and "Paris" not in text
    assert seen["bob_badge_before"] == 0
    [(approver, outcome)] = gw.sql(
        "SELECT approver, outcome FROM tool_audit WHERE session_id = ?", (session_id,)
    )
    assert (approver, outcome) == ("alice", "ok")

    # Jobs: live progress, the chat answer, and the image shown inline.
    assert seen["job_statuses"].count("completed") == 2
    assert seen["job_answer"] == "An answer for later"
    assert seen["image_width"] == 8  # the fake ComfyUI's PNG, loaded through its signed URL
    assert any(0 < value < 100 for value in seen["progress_seen"]), seen["progress_seen"]
    assert 100 in seen["progress_seen"]

    # Errors are messages, not blank pages.
    assert "429" in seen["quota_message"] and "quota" in seen["quota_message"]
    assert "403" in seen["disabled_message"] and "disabled" in seen["disabled_message"]

    # Usage across users, filtered by user.
    assert seen["admin_usage_all"] >= seen["admin_usage_alice"] > 0
    assert {"mock-stream", "weather-bot", "mock"} <= set(seen["admin_usage_models"])

    # Spend against budgets: the figures are the admin report's for the period shown.
    _check_spend(gw, seen)
    with gw.client(seen["copied_key"]) as client:
        budgets = client.get("/v1/usage").json()["budgets"]
    fields = ("scope", "id", "spent", "budget", "remaining")
    assert [{f: b[f] for f in fields} for b in seen["my_budgets"]] == [
        {f: str(b[f]) for f in fields} for b in budgets
    ]
    assert {(b["scope"], b["id"]) for b in budgets} == {("user", "alice"), ("team", "studio")}
    assert all(Decimal(b["spent"]) > 0 for b in budgets)

    # The audit log shows the console's admin writes, the vendor key as *** only, filtered.
    assert {"users.upsert", "models.create", "fallbacks.set", "mcp_servers.register"} <= set(
        seen["audit_actions"]
    )
    assert "***" in seen["audit_text"] and "sk-console" not in seen["audit_text"]
    assert seen["audit_filtered"] and set(seen["audit_filtered"]) == {"models.create"}
    # Request logs: found by user; the oldest of alice's is the playground's chat, redacted.
    assert {"alice", "carol"} <= set(seen["request_log_all_users"])
    assert seen["request_log_users"] == ["alice"]
    assert (
        PROMPT in seen["request_log_bodies"]
        and seen["copied_key"] not in seen["request_log_bodies"]
    )

    # Care: no CSP violation, no script error, only the public API and the console's files.
    assert seen["csp_violations"] == [] and seen["page_errors"] == []
    assert all(p.startswith(("/ui", "/v1/", "/admin/")) for p in seen["requested_paths"]), seen[
        "requested_paths"
    ]
    assert max(seen["overflow"][f"{view}-390.png"] for view in VIEWS) <= 390, seen["overflow"]

    # The screenshots of the main views at both widths, linked from docs/ui.md; the tracked ones
    # are left alone unless asked for.
    if shots != DOC_SCREENSHOTS:
        assert {p.name: p.stat().st_mtime_ns for p in DOC_SCREENSHOTS.iterdir()} == documented
    doc = DOC.read_text()
    expected = {f"{view}-{width}.png" for view in VIEWS for width in (1280, 390)}
    assert set(report["screenshots"]) == expected
    for name in expected:
        assert (shots / name).stat().st_size > 1000, name
        assert f"ui/{name}" in doc, name
    assert report["total_ms"] < 60_000, report["steps"]


def _check_spend(gw: Gateway, seen: dict[str, Any]) -> None:
    """The spend view showed, per team and per user, what ``GET /admin/usage`` computes for the
    month it showed, each against its budget; its CSV export is the report's CSV."""
    assert seen["spend_period"] == "month"
    since, until = seen["spend_range"]["since"], seen["spend_range"]["until"]
    start, end = dt.datetime.fromisoformat(since), dt.datetime.fromisoformat(until)
    assert (start.day, start.hour, start.tzinfo, end.day) == (1, 0, dt.UTC, 1)  # a UTC month
    assert start <= dt.datetime.now(dt.UTC) and 28 <= (end - start).days <= 31
    budgets = {
        "studio": ("1.000000", "month"),
        "ops": ("2.000000", "week"),
        "alice": ("0.500000", "month"),
    }
    for kind, rows in (("team", seen["spend_teams"]), ("user", seen["spend_users"])):
        query = {"group_by": kind, "since": since, "until": until}
        report = gw.admin("GET", "/admin/usage", params=query).json()["data"]
        costs = {item[kind] or "": item["cost"] for item in report}
        shown = {row["id"]: row for row in rows}
        assert {i: shown[i]["spent"] for i in costs} == costs
        assert all(row["spent"] == "0.000000" for i, row in shown.items() if i not in costs)
        for owner, (amount, period) in budgets.items():
            if owner not in shown:
                continue
            row = shown[owner]
            assert row["budget"] == f"{amount} per {period}"
            share = int(Decimal(row["spent"]) * 100 / Decimal(amount))
            assert row["used"] == (f"{share} %" if period == "month" else "another period")
    assert Decimal(seen["spend_teams"][0]["spent"]) > 0 and seen["spend_teams"][0]["id"] == "studio"
    assert {"studio", "ops", "alice", "bob"} <= {
        r["id"] for r in seen["spend_teams"] + seen["spend_users"]
    }
    assert seen["spend_team_total"] == str(sum(Decimal(r["spent"]) for r in seen["spend_teams"]))
    query = {"group_by": "team", "since": since, "until": until, "format": "csv"}
    assert seen["spend_csv"] == gw.admin("GET", "/admin/usage", params=query).text
    assert seen["spend_csv_name"] == "spend-per-team.csv"
