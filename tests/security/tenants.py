"""Two tenants with real objects each (a job, a stored file, a paused tool session), for the
isolation tests and the schemathesis run. Not a test module."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Gateway, wait_for

EXAMPLE_MCP = Path(__file__).resolve().parents[2] / "examples" / "mcp_weather.py"
WORKFLOW: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}", "steps": 1, "model": ["1", 0]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["1", 0]}},
    "5": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "gw"}},
}
WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


@dataclass
class Tenant:
    """A user, its key, and the ids of what it owns."""

    user_id: str
    key: str
    jobs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    file_urls: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)

    def ids(self) -> set[str]:
        return {*self.jobs, *self.files, *self.sessions}


def prepare_models(gw: Gateway, comfyui_url: str | None) -> None:
    """The ``weather`` MCP server, a Mock model that calls it, and a ComfyUI model ``sd``."""
    server = {
        "name": "weather",
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(EXAMPLE_MCP)],
    }
    response = gw.admin("POST", "/admin/mcp/servers", json=server)
    assert response.status_code == 201, response.text
    gw.add_model("weather-bot", "Mock", params={"tool_call": WEATHER_CALL})
    if comfyui_url is not None:
        params = {"workflow": WORKFLOW, "defaults": {"size": "64x64"}}
        gw.add_model("sd", "ComfyUI", base_url=comfyui_url, params=params)


def populate(gw: Gateway, user_id: str, *, images: bool = True) -> Tenant:
    """Create the user and, as it, a finished job, a stored file and a paused session."""
    tenant = Tenant(user_id, gw.create_user(user_id))
    keys = gw.admin("GET", f"/admin/users/{user_id}/keys").json()["data"]
    tenant.key_ids = [k["id"] for k in keys]
    with gw.client(tenant.key) as client:
        hello = [{"role": "user", "content": f"hello from {user_id}"}]
        job = client.post(
            "/v1/chat/completions", json={"model": "mock", "async": True, "messages": hello}
        )
        assert job.status_code == 202, job.text
        tenant.jobs.append(job.json()["job_id"])
        pause = client.post(
            "/v1/chat/completions",
            json={
                "model": "weather-bot",
                "messages": hello,
                "tools": [{"type": "mcp", "server_label": "weather"}],
            },
        )
        assert pause.status_code == 200 and pause.json()["status"] == "require_confirmation"
        tenant.sessions.append(pause.json()["session_id"])
        if images:
            image = client.post("/v1/images/generations", json={"model": "sd", "prompt": "a cat"})
            assert image.status_code == 200, image.text
            for item in image.json()["data"]:
                tenant.file_urls.append(item["url"])
                tenant.files.append(item["url"].split("?")[0].rsplit("/", 1)[-1])
        wait_for(lambda: _job_status(client, tenant.jobs[0]) == "completed", timeout=20)
    return tenant


def _job_status(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/v1/jobs/{job_id}").json()["status"])
