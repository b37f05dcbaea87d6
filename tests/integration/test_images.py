"""Images on ComfyUI through the gateway: sync and async, progress, files, isolation, billing."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lowart.testing.comfyui_fake import FakeComfyUI, ThreadedComfyUI
from tests.conftest import Gateway, wait_for

PNG = b"\x89PNG\r\n\x1a\n"
WORKFLOW: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {
            "width": "{{width}}",
            "height": "{{height}}",
            "batch_size": "{{batch_size}}",
            "color": 0,
        },
    },
    "2": {
        "class_type": "KSampler",
        "inputs": {"seed": "{{seed}}", "steps": 5, "cfg": 7.0, "model": ["1", 0]},
    },
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["1", 0]}},
    "4": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "gw"}},
}


@pytest.fixture
def comfy() -> Iterator[ThreadedComfyUI]:
    with FakeComfyUI.in_thread(fake=FakeComfyUI(step_delay=0.05)) as served:
        yield served


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway], comfy: ThreadedComfyUI) -> Gateway:
    gateway = make_gateway(job_poll_s=0.05)
    params = {"workflow": WORKFLOW, "defaults": {"size": "64x64"}, "quota_tokens_per_image": 100}
    gateway.add_model("sd", "ComfyUI", base_url=comfy.base_url, params=params)
    broken = {
        "workflow": {**WORKFLOW, "9": {"class_type": "FailValidation", "inputs": {}}},
        "defaults": {"size": "64x64"},
    }
    gateway.add_model("sd-broken", "ComfyUI", base_url=comfy.base_url, params=broken)
    return gateway


def _generate(gw: Gateway, key: str, **body: Any) -> httpx.Response:
    with gw.client(key) as client:
        return client.post("/v1/images/generations", json={"model": "sd", **body})


def test_sync_generation_stores_images_for_their_owner(gw: Gateway, comfy: ThreadedComfyUI) -> None:
    key, other = gw.create_user("painter"), gw.create_user("onlooker")
    response = _generate(gw, key, prompt="a red cat", n=2, size="128x96")
    assert response.status_code == 200, response.text
    urls = [item["url"] for item in response.json()["data"]]
    assert len(urls) == 2
    graph = comfy.fake.submitted[-1]["prompt"]
    assert graph["1"]["inputs"]["width"] == 128 and graph["1"]["inputs"]["height"] == 96
    assert graph["1"]["inputs"]["batch_size"] == 2  # JSON numbers, not strings
    assert graph["3"]["inputs"]["text"] == "a red cat"
    assert isinstance(graph["2"]["inputs"]["seed"], int)
    assert 0 <= graph["2"]["inputs"]["seed"] < 2**64
    for url in urls:
        signed = httpx.get(gw.url + url)  # a browser: no key, the signature suffices
        assert signed.status_code == 200 and signed.content.startswith(PNG)
        path = url.split("?")[0]
        with gw.client(key) as owner, gw.client(other) as stranger:
            assert owner.get(path).content == signed.content
            assert stranger.get(path).status_code == 404
        assert httpx.get(gw.url + path).status_code == 404  # unsigned, no key
        tampered = url.replace("sig=", "sig=0")
        assert httpx.get(gw.url + tampered).status_code == 404
        exp = url.split("exp=")[1].split("&")[0]
        expired = url.replace(f"exp={exp}", "exp=1000")
        assert httpx.get(gw.url + expired).status_code == 404
    gw.flush()
    assert gw.sql("SELECT token_used FROM users WHERE user_id='painter'") == [(200,)]


def test_seed_is_random_unless_given(gw: Gateway, comfy: ThreadedComfyUI) -> None:
    key = gw.create_user()
    seeds = []
    for body in ({"prompt": "x"}, {"prompt": "x"}, {"prompt": "x", "seed": 42}):
        assert _generate(gw, key, **body).status_code == 200
        seeds.append(comfy.fake.submitted[-1]["prompt"]["2"]["inputs"]["seed"])
    assert seeds[0] != seeds[1] and seeds[2] == 42


def test_an_image_answer_carries_the_gateway_headers(gw: Gateway) -> None:
    """docs/api.md, "Chat": a model answer carries ``x-lowart-model`` and the rate-limit headers."""
    key = gw.create_user(rpm_limit=5)
    response = _generate(gw, key, prompt="x")
    assert response.status_code == 200, response.text
    assert response.headers["x-lowart-model"] == "sd"
    assert response.headers["x-ratelimit-limit-requests"] == "5"
    assert response.headers["x-ratelimit-remaining-requests"] == "4"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    assert response.headers["content-type"] == "application/json"


def test_b64_json_its_idempotent_replay_and_bad_requests(
    gw: Gateway, comfy: ThreadedComfyUI
) -> None:
    key = gw.create_user()
    body = {"model": "sd", "prompt": "x", "response_format": "b64_json"}
    with gw.client(key) as client:
        first, again = [
            client.post("/v1/images/generations", json=body, headers={"Idempotency-Key": "i-1"})
            for _ in range(2)
        ]
    answer = first.json()
    assert base64.b64decode(answer["data"][0]["b64_json"]).startswith(PNG)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert len(comfy.fake.submitted) == 1  # the replay generated nothing
    assert _generate(gw, key, prompt="x", size="huge").status_code == 400
    assert _generate(gw, key, size="64x64").status_code == 400  # no prompt
    with gw.client(key) as client:
        not_images = client.post("/v1/images/generations", json={"model": "mock", "prompt": "x"})
    assert not_images.status_code == 400
    assert "does not generate images" in not_images.json()["error"]["message"]


def test_rejected_workflow_gives_comfyuis_message(gw: Gateway) -> None:
    with gw.client(gw.create_user()) as client:
        response = client.post("/v1/images/generations", json={"model": "sd-broken", "prompt": "x"})
    assert response.status_code == 400
    assert "ComfyUI rejected the workflow" in response.json()["error"]["message"]


def test_sizes_under_64_are_comfyuis_to_judge(gw: Gateway, comfy: ThreadedComfyUI) -> None:
    """The gateway once refused any side under 64 (undocumented, stricter than ComfyUI): now
    ComfyUI's own minimum decides, and its refusal comes back as a 400 with its message."""
    key = gw.create_user()
    small = _generate(gw, key, prompt="x", size="32x48")  # EmptyImage takes sides from 1
    assert small.status_code == 200, small.text
    latent = {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": "{{width}}", "height": 8}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "l"}},
    }
    gw.add_model("latent", "ComfyUI", base_url=comfy.base_url, params={"workflow": latent})
    with gw.client(key) as client:
        refused = client.post(
            "/v1/images/generations", json={"model": "latent", "prompt": "x", "size": "8x8"}
        )
    assert refused.status_code == 400, refused.text
    assert "smaller than min of 16" in refused.json()["error"]["message"]


def test_a_comfyui_model_needs_a_workflow(gw: Gateway, comfy: ThreadedComfyUI) -> None:
    """Registered without params.workflow, every job on the model failed later: now a 400."""
    url = comfy.base_url
    for params in [None, {}, {"workflow": {}}, {"workflow": "graph.json"}, ["workflow"]]:
        body = {"model_id": "bare", "vendor_type": "comfyui", "base_url": url, "params": params}
        refused = gw.admin("POST", "/admin/models", json=body)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["error"]["param"] == "params"
    replaced = {"vendor_type": "ComfyUI", "base_url": url}
    assert gw.admin("PUT", "/admin/models/sd", json=replaced).status_code == 400
    assert gw.admin("PATCH", "/admin/models/sd", json={"params": {}}).status_code == 400
    to_comfy = {"vendor_type": "ComfyUI", "base_url": url}
    assert gw.admin("PATCH", "/admin/models/mock", json=to_comfy).status_code == 400
    assert gw.admin("GET", "/admin/models/bare").status_code == 404
    assert gw.admin("GET", "/admin/models/sd").json()["params"]["workflow"] == WORKFLOW
    assert gw.admin("GET", "/admin/models/mock").json()["vendor_type"] == "Mock"
    assert gw.admin("PATCH", "/admin/models/sd", json={"enabled": False}).status_code == 200


def test_async_job_progress_rises_to_completion(gw: Gateway) -> None:
    key = gw.create_user()
    accepted = _generate(gw, key, prompt="slowly", **{"async": True})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    seen: list[float] = []
    with gw.client(key) as client:

        def done() -> bool:
            job = client.get(f"/v1/jobs/{job_id}").json()
            seen.append(job["progress"])
            return job["status"] in {"completed", "failed"}

        wait_for(done, timeout=15, interval=0.02)
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "completed", job
    assert seen == sorted(seen) and seen[-1] == 1
    assert any(0 < p < 1 for p in seen)  # real step progress on the way
    assert httpx.get(gw.url + job["result"]["data"][0]["url"]).content.startswith(PNG)


def test_chat_on_a_comfyui_model_answers_with_image_urls(gw: Gateway) -> None:
    client = gw.openai(gw.create_user())
    answer = client.chat.completions.create(
        model="sd", messages=[{"role": "user", "content": "draw a cat"}]
    )
    content = answer.choices[0].message.content or ""
    assert content.startswith("![image 1](/v1/files/")
    url = content.split("(")[1].rstrip(")")
    assert httpx.get(gw.url + url).content.startswith(PNG)
    assert answer.usage is not None and answer.usage.completion_tokens == 100


def test_responses_on_a_comfyui_model_answer_with_image_items(gw: Gateway) -> None:
    client = gw.openai(gw.create_user())
    whole = client.responses.create(model="sd", input="draw a cat")
    with client.responses.stream(model="sd", input="draw a dog") as stream:
        streamed = stream.get_final_response()
    for response in (whole, streamed):
        [item] = response.output
        assert item.type == "image_generation_call" and item.status == "completed"
        assert base64.b64decode(item.result or "").startswith(PNG)
        assert response.usage is not None and response.usage.output_tokens == 100


def test_cancelling_a_running_job_interrupts_comfyui(gw: Gateway, comfy: ThreadedComfyUI) -> None:
    comfy.fake.step_delay = 0.5
    key = gw.create_user()
    job_id = _generate(gw, key, prompt="long", **{"async": True}).json()["job_id"]
    with gw.client(key) as client:
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["progress"] > 0, timeout=10)
        assert client.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    prompt_id = comfy.fake.submitted[-1]["prompt_id"]

    def interrupted() -> bool:
        entry = comfy.fake.history.get(prompt_id)
        return entry is not None and entry["status"]["status_str"] == "error"

    wait_for(interrupted, timeout=10)


def test_a_prompt_comfyui_lost_fails_its_job_after_a_restart(
    make_gateway: Callable[..., Gateway], gw: Gateway, comfy: ThreadedComfyUI
) -> None:
    comfy.fake.step_delay = 0.5
    key = gw.create_user("restarter")
    job_id = _generate(gw, key, prompt="lost", **{"async": True}).json()["job_id"]
    with gw.client(key) as client:
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["progress"] > 0, timeout=10)
    gw.stop()  # a clean stop hands the lease back with the prompt id stored
    assert gw.sql("SELECT upstream_ref IS NOT NULL, status FROM jobs") == [(1, "running")]
    comfy.forget()
    again = make_gateway(job_poll_s=0.05)
    with again.client(key) as client:
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "failed")
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert "lost the prompt" in job["error"]
    assert len(comfy.fake.submitted) == 1  # resumed, never submitted again


def test_a_restart_resumes_watching_the_same_prompt(
    make_gateway: Callable[..., Gateway], gw: Gateway, comfy: ThreadedComfyUI
) -> None:
    comfy.fake.step_delay = 0.2
    key = gw.create_user("resumer")
    job_id = _generate(gw, key, prompt="resume me", **{"async": True}).json()["job_id"]
    with gw.client(key) as client:
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["progress"] > 0, timeout=10)
    gw.stop()
    again = make_gateway(job_poll_s=0.05)
    with again.client(key) as client:
        wait_for(
            lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "completed", timeout=15
        )
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert len(comfy.fake.submitted) == 1  # watched again, not submitted again
    assert httpx.get(again.url + job["result"]["data"][0]["url"]).content.startswith(PNG)
    again.flush()
    assert again.sql("SELECT token_used FROM users WHERE user_id='resumer'") == [(100,)]
