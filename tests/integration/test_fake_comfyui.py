"""The fake ComfyUI server seen over HTTP and its WebSocket, as a gateway would use it."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import pytest

from lowart.testing.comfyui_fake import FakeComfyUI

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_GRAPH: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 2}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "gw"}},
}
SAMPLER_GRAPH: dict[str, Any] = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "fake.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 5,
            "cfg": 7,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "gw"}},
}
SAVE = {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
SLOW_GRAPH: dict[str, Any] = {
    "1": {"class_type": "SlowNode", "inputs": {"seconds": 60}},
    "2": {"class_type": "EmptyImage", "inputs": {}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
}
Event = dict[str, Any]
TERMINAL = {"execution_success", "execution_error", "execution_interrupted"}


@pytest.fixture
async def comfy() -> AsyncIterator[FakeComfyUI]:
    fake = FakeComfyUI(step_delay=0.001)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def http(comfy: FakeComfyUI) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=comfy.base_url) as session:
        yield session


async def _submit(
    http: aiohttp.ClientSession, graph: dict[str, Any], client_id: str | None = "c1", **extra: Any
) -> str:
    body = {"prompt": graph, **extra} | ({"client_id": client_id} if client_id else {})
    async with http.post("/prompt", json=body) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
    assert set(answer) == {"prompt_id", "number", "node_errors"}
    return str(answer["prompt_id"])


async def _json(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> Any:
    async with http.request(method, path, **kwargs) as response:
        assert response.status == 200, await response.text()
        return await response.json() if response.content_type == "application/json" else None


async def _events(
    ws: aiohttp.ClientWebSocketResponse, stop: Callable[[Event], bool]
) -> list[Event]:
    """Every event up to and including the first one ``stop`` accepts."""
    seen: list[Event] = []
    while True:
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        seen.append(message.json())
        if stop(seen[-1]):
            return seen


def _is(kind: str, prompt_id: str | None = None) -> Callable[[Event], bool]:
    def accept(event: Event) -> bool:
        data = event["data"]
        return event["type"] == kind and prompt_id in (None, data.get("prompt_id"))

    return accept


def _finished(event: Event) -> bool:
    return event["type"] == "executing" and event["data"]["node"] is None


async def _ws(http: aiohttp.ClientSession, client_id: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"/ws?clientId={client_id}")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "status"
    assert hello["data"]["sid"] == client_id
    assert hello["data"]["status"]["exec_info"] == {"queue_remaining": 0}
    return ws


async def test_image_workflow_runs_to_history_and_view(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "c1") as ws:
        prompt_id = await _submit(http, IMAGE_GRAPH)
        events = await _events(ws, _finished)
    kinds = [e["type"] for e in events if e["type"] != "status"]
    assert kinds == [
        "execution_start",
        "execution_cached",
        "executing",
        "executing",
        "executing",
        "executed",
        "execution_success",
        "executing",
    ]
    assert all(e["data"]["prompt_id"] == prompt_id for e in events if e["type"] != "status")
    assert [e["data"]["node"] for e in events if e["type"] == "executing"] == ["1", "2", "3", None]
    executed = next(e["data"] for e in events if e["type"] == "executed")
    images = [
        {"filename": "gw_00001_.png", "subfolder": "", "type": "output"},
        {"filename": "gw_00002_.png", "subfolder": "", "type": "output"},
    ]
    assert executed == {
        "node": "3",
        "display_node": "3",
        "output": {"images": images},
        "prompt_id": prompt_id,
    }

    history = await _json(http, "GET", f"/history/{prompt_id}")
    entry = history[prompt_id]
    assert entry["outputs"] == {"3": {"images": images}}
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    number, item_id, graph, extra, outputs = entry["prompt"]
    assert number == 0
    assert (item_id, graph, outputs, extra["client_id"]) == (prompt_id, IMAGE_GRAPH, ["3"], "c1")
    assert entry["meta"]["3"]["node_id"] == "3"
    assert prompt_id in await _json(http, "GET", "/api/history")

    bodies = []
    for image in images:
        async with http.get("/api/view", params=image) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"] == f'filename="{image["filename"]}"'
            bodies.append(await response.read())
    assert all(body.startswith(PNG_SIGNATURE) for body in bodies)
    assert bodies[0] != bodies[1]


async def test_ksampler_progress_rises_then_success(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "c1") as ws:
        prompt_id = await _submit(http, SAMPLER_GRAPH)
        events = await _events(ws, _is("execution_success", prompt_id))
    progress = [e["data"] for e in events if e["type"] == "progress"]
    assert [p["value"] for p in progress] == [1, 2, 3, 4, 5]
    assert {(p["max"], p["node"], p["prompt_id"]) for p in progress} == {(5, "3", prompt_id)}
    assert events[-1]["data"]["prompt_id"] == prompt_id
    assert comfy.submitted[-1] == {
        "prompt_id": prompt_id,
        "client_id": "c1",
        "prompt": SAMPLER_GRAPH,
        "status": 200,
    }
    assert isinstance(comfy.submitted[-1]["prompt"]["3"]["inputs"]["seed"], int)  # type: ignore[index]


async def test_default_steps_and_seed_coloured_images(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    graph = copy.deepcopy(SAMPLER_GRAPH)
    del graph["3"]["inputs"]["steps"]
    async with await _ws(http, "c1") as ws:
        first = await _submit(http, graph)
        events = await _events(ws, _is("execution_success", first))
        graph["3"]["inputs"]["seed"] = 43
        second = await _submit(http, graph)
        await _events(ws, _is("execution_success", second))
    assert [e["data"]["value"] for e in events if e["type"] == "progress"] == [1, 2, 3, 4]
    history = await _json(http, "GET", "/history")
    files = [history[p]["outputs"]["9"]["images"][0]["filename"] for p in (first, second)]
    assert files == ["gw_00001_.png", "gw_00002_.png"]
    pngs = [comfy.files["output", "", name] for name in files]
    assert pngs[0] != pngs[1]


async def test_history_empty_while_queued_or_running(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "c1") as ws:
        slow = await _submit(http, SLOW_GRAPH)
        await _events(ws, _is("executing", slow))
        queued = await _submit(http, IMAGE_GRAPH)
        assert await _json(http, "GET", f"/history/{slow}") == {}
        assert await _json(http, "GET", f"/history/{queued}") == {}
        assert await _json(http, "GET", "/history/unknown") == {}
        queue = await _json(http, "GET", "/queue")
        assert [item[1] for item in queue["queue_running"]] == [slow]
        assert [item[1] for item in queue["queue_pending"]] == [queued]
        assert len(queue["queue_pending"][0]) == 5
        assert await _json(http, "GET", "/prompt") == {"exec_info": {"queue_remaining": 2}}

        await _json(http, "POST", "/interrupt", json={"prompt_id": slow})
        events = await _events(ws, _is("execution_success", queued))
    interrupted = next(e["data"] for e in events if e["type"] == "execution_interrupted")
    assert (interrupted["prompt_id"], interrupted["node_id"]) == (slow, "1")
    assert interrupted["node_type"] == "SlowNode"
    history = await _json(http, "GET", "/history")
    assert history[slow]["status"]["status_str"] == "error"
    assert history[slow]["status"]["completed"] is False
    assert history[slow]["status"]["messages"][-1][0] == "execution_interrupted"
    assert history[slow]["outputs"] == {}
    assert history[queued]["status"]["status_str"] == "success"
    assert list(await _json(http, "GET", "/history?max_items=1")) == [queued]


async def test_delete_pending_and_interrupt_running(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "c1") as ws:
        running = await _submit(http, SLOW_GRAPH)
        await _events(ws, _is("executing", running))
        pending = await _submit(http, IMAGE_GRAPH)
        await _json(http, "POST", "/queue", json={"delete": [pending]})
        queue = await _json(http, "GET", "/queue")
        assert (len(queue["queue_running"]), queue["queue_pending"]) == (1, [])

        await _json(http, "POST", "/interrupt", json={"prompt_id": pending})  # not running: no-op
        assert [item[1] for item in (await _json(http, "GET", "/queue"))["queue_running"]] == [
            running
        ]
        async with http.post("/api/interrupt") as response:  # global interrupt, empty body
            assert response.status == 200
        events = await _events(ws, _finished)
    assert any(_is("execution_interrupted", running)(event) for event in events)
    assert await _json(http, "GET", "/queue") == {"queue_running": [], "queue_pending": []}
    assert await _json(http, "GET", f"/history/{pending}") == {}
    assert (await _json(http, "GET", f"/history/{running}"))[running]["status"]["status_str"] == (
        "error"
    )


async def test_clear_queue(comfy: FakeComfyUI, http: aiohttp.ClientSession) -> None:
    async with await _ws(http, "c1") as ws:
        running = await _submit(http, SLOW_GRAPH)
        await _events(ws, _is("executing", running))
        await _submit(http, IMAGE_GRAPH)
        await _submit(http, IMAGE_GRAPH)
        await _json(http, "POST", "/queue", json={"clear": True})
        assert (await _json(http, "GET", "/queue"))["queue_pending"] == []
        await _json(http, "POST", "/interrupt")
        await _events(ws, _is("execution_interrupted", running))


async def test_error_node_fails_the_run(comfy: FakeComfyUI, http: aiohttp.ClientSession) -> None:
    graph = {**IMAGE_GRAPH, "9": {"class_type": "ErrorNode", "inputs": {"message": "boom"}}}
    async with await _ws(http, "c1") as ws:
        prompt_id = await _submit(http, graph)
        events = await _events(ws, _finished)
    error = next(e["data"] for e in events if e["type"] == "execution_error")
    assert error["prompt_id"] == prompt_id
    assert (error["node_id"], error["node_type"], error["exception_message"]) == (
        "9",
        "ErrorNode",
        "boom",
    )
    assert error["executed"] == ["1", "2", "3"]
    assert "execution_success" not in [e["type"] for e in events]
    status = (await _json(http, "GET", f"/history/{prompt_id}"))[prompt_id]["status"]
    assert (status["status_str"], status["completed"]) == ("error", False)
    assert status["messages"][-1][0] == "execution_error"


async def test_partial_fail_is_accepted_with_node_errors(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    graph = {**IMAGE_GRAPH, "7": {"class_type": "PartialFail", "inputs": {}}}
    async with await _ws(http, "c1") as ws:
        async with http.post("/prompt", json={"prompt": graph, "client_id": "c1"}) as response:
            assert response.status == 200
            answer = await response.json()
        await _events(ws, _finished)
    errors = answer["node_errors"]
    assert list(errors) == ["7"]
    assert errors["7"]["class_type"] == "PartialFail"
    assert errors["7"]["dependent_outputs"] == ["7"]
    assert errors["7"]["errors"][0]["type"] == "custom_validation_failed"
    entry = (await _json(http, "GET", f"/history/{answer['prompt_id']}"))[answer["prompt_id"]]
    assert list(entry["outputs"]) == ["3"]
    assert entry["prompt"][4] == ["3"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"prompt": {**IMAGE_GRAPH, "9": {"class_type": "FailValidation", "inputs": {}}}}, None),
        ({"prompt": {**IMAGE_GRAPH, "9": {"class_type": "Nope", "inputs": {}}}}, None),
        ({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {}}}}, "prompt_no_outputs"),
        ({"client_id": "c1"}, "no_prompt"),
        ({"prompt": {"1": {"inputs": {}}, "2": SAVE}}, "missing_node_type"),
        ({"prompt": ["not", "a", "graph"]}, "invalid_prompt"),
    ],
)
async def test_rejected_prompt_bodies(
    comfy: FakeComfyUI, http: aiohttp.ClientSession, body: dict[str, Any], kind: str | None
) -> None:
    async with http.post("/api/prompt", json=body) as response:
        assert response.status == 400
        answer = await response.json()
    assert set(answer) == {"error", "node_errors"}
    assert set(answer["error"]) == {"type", "message", "details", "extra_info"}
    if kind is not None:
        assert answer["error"]["type"] == kind
        assert answer["node_errors"] == {}
    assert comfy.queue == []


async def test_failed_validation_shape(comfy: FakeComfyUI, http: aiohttp.ClientSession) -> None:
    graph = {**IMAGE_GRAPH, "9": {"class_type": "FailValidation", "inputs": {}}}
    async with http.post("/prompt", json={"prompt": graph}) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["error"]["type"] == "prompt_outputs_failed_validation"
    assert answer["error"]["message"] == "Prompt outputs failed validation"
    assert answer["error"]["details"]
    entry = answer["node_errors"]["9"]
    assert (entry["class_type"], entry["dependent_outputs"]) == ("FailValidation", ["3"])
    error = entry["errors"][0]
    assert set(error) == {"type", "message", "details", "extra_info"}
    assert comfy.submitted[-1]["status"] == 400
    assert comfy.submitted[-1]["prompt_id"] is None


async def test_unknown_class_and_unlisted_value(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    graph = {**IMAGE_GRAPH, "9": {"class_type": "Nope", "inputs": {}, "_meta": {"title": "X"}}}
    async with http.post("/prompt", json={"prompt": graph}) as response:
        answer = await response.json()
    assert answer["error"]["type"] == "missing_node_type"
    assert answer["error"]["extra_info"] == {
        "node_id": "9",
        "class_type": "Nope",
        "node_title": "X",
    }

    graph = copy.deepcopy(SAMPLER_GRAPH)
    graph["4"]["inputs"]["ckpt_name"] = "missing.safetensors"
    async with http.post("/prompt", json={"prompt": graph}) as response:
        assert response.status == 400
        answer = await response.json()
    error = answer["node_errors"]["4"]["errors"][0]
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"]["input_name"] == "ckpt_name"
    assert error["extra_info"]["received_value"] == "missing.safetensors"
    assert answer["node_errors"]["4"]["dependent_outputs"] == ["9"]


async def test_view_rejects_bad_paths(comfy: FakeComfyUI, http: aiohttp.ClientSession) -> None:
    comfy.files["output", "", "ok.png"] = b"png"
    cases = [
        ({"filename": "../x", "type": "output"}, 400),
        ({"filename": "ok.png", "subfolder": "../..", "type": "output"}, 400),
        ({"filename": "/etc/passwd", "type": "output"}, 400),
        ({"filename": "ok.png", "type": "bogus"}, 400),
        ({"filename": "missing.png", "type": "output"}, 404),
        ({"filename": "ok.png", "type": "input"}, 404),
        ({"filename": "ok.png", "subfolder": "", "type": "output"}, 200),
    ]
    for params, status in cases:
        async with http.get("/view", params=params) as response:
            assert response.status == status, params


async def test_forget_loses_queue_and_history(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "c1") as ws:
        done = await _submit(http, IMAGE_GRAPH)
        await _events(ws, _finished)
        running = await _submit(http, SLOW_GRAPH)
        await _events(ws, _is("executing", running))
        pending = await _submit(http, IMAGE_GRAPH)
        comfy.forget()
        assert await _json(http, "GET", "/queue") == {"queue_running": [], "queue_pending": []}
        for prompt_id in (done, running, pending):
            assert await _json(http, "GET", f"/history/{prompt_id}") == {}
        again = await _submit(http, IMAGE_GRAPH)  # the server keeps working after a "restart"
        events = await _events(ws, _finished)
    assert {e["data"].get("prompt_id") for e in events if e["type"] != "status"} == {again}
    assert await _json(http, "GET", f"/history/{running}") == {}


async def test_reconnect_under_same_client_id_replaces_socket(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    first = await _ws(http, "c1")
    async with await _ws(http, "c1") as second:
        prompt_id = await _submit(http, IMAGE_GRAPH)
        await _events(second, _is("execution_success", prompt_id))
        await comfy.drop_ws()
        left = [message async for message in first]
    assert first.closed
    assert all("prompt_id" not in message.json()["data"] for message in left)


async def test_dropped_socket_can_reconnect(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    ws = await _ws(http, "c1")
    await comfy.drop_ws()
    assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
    await ws.close()
    async with await _ws(http, "c1") as again:
        prompt_id = await _submit(http, IMAGE_GRAPH)
        await _events(again, _is("execution_success", prompt_id))


async def test_two_prompts_keep_their_own_prompt_ids(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "c1") as ws:
        first = await _submit(http, SAMPLER_GRAPH)
        second = await _submit(http, SAMPLER_GRAPH)
        events = await _events(ws, _is("execution_success", second))
    prompt_events = [e for e in events if e["type"] != "status"]
    ids = [e["data"]["prompt_id"] for e in prompt_events]
    assert first != second
    assert set(ids) == {first, second}
    assert ids == sorted(ids, key=[first, second].index)  # one at a time, in order
    for prompt_id in (first, second):
        progress = [e for e in prompt_events if _is("progress", prompt_id)(e)]
        assert [e["data"]["value"] for e in progress] == [1, 2, 3, 4, 5]


async def test_progress_without_client_id_is_broadcast(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    async with await _ws(http, "someone-else") as ws:
        prompt_id = await _submit(http, SAMPLER_GRAPH, client_id=None)
        events = await _events(ws, lambda e: e["type"] == "progress" and e["data"]["value"] == 5)
    kinds = {e["type"] for e in events}
    assert kinds == {"status", "progress"}
    assert {e["data"]["prompt_id"] for e in events if e["type"] == "progress"} == {prompt_id}


async def test_termination_by_executing_none_only() -> None:
    fake = FakeComfyUI(step_delay=0, send_success=False)
    await fake.start()
    try:
        async with aiohttp.ClientSession(base_url=fake.base_url) as session:
            async with await _ws(session, "c1") as ws:
                prompt_id = await _submit(session, IMAGE_GRAPH)
                events = await _events(ws, _finished)
            assert "execution_success" not in {e["type"] for e in events}
            entry = await _json(session, "GET", f"/history/{prompt_id}")
            assert entry[prompt_id]["status"]["status_str"] == "success"
    finally:
        await fake.stop()


async def test_object_info_and_origin_check(
    comfy: FakeComfyUI, http: aiohttp.ClientSession
) -> None:
    info = await _json(http, "GET", "/object_info")
    assert {"KSampler", "SaveImage", "SlowNode"} <= set(info)
    single = await _json(http, "GET", "/api/object_info/CheckpointLoaderSimple")
    ckpt = single["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    assert "fake.safetensors" in ckpt[0]
    assert single["CheckpointLoaderSimple"]["output"] == ["MODEL", "CLIP", "VAE"]
    assert info["SaveImage"]["output_node"] is True
    async with http.get("/queue", headers={"Origin": "http://evil.example"}) as response:
        assert response.status == 403
    async with http.get("/queue", headers={"Origin": comfy.base_url}) as response:
        assert response.status == 200


async def test_prompt_id_number_and_front(comfy: FakeComfyUI, http: aiohttp.ClientSession) -> None:
    async with await _ws(http, "c1") as ws:
        slow = await _submit(http, SLOW_GRAPH)
        await _events(ws, _is("executing", slow))
        later = await _submit(http, IMAGE_GRAPH, prompt_id="mine-1")
        sooner = await _submit(http, IMAGE_GRAPH, front=True)
        queue = await _json(http, "GET", "/queue")
        assert [item[1] for item in queue["queue_pending"]] == [sooner, later]
        assert later == "mine-1"
        await _json(http, "POST", "/interrupt")
        events = await _events(ws, _is("execution_success", later))
    starts = [e["data"]["prompt_id"] for e in events if e["type"] == "execution_start"]
    assert starts == [sooner, later]


def test_in_thread_handle_serves_synchronous_clients() -> None:
    with FakeComfyUI.in_thread(fake=FakeComfyUI(step_delay=0)) as comfy:
        answer = httpx.post(f"{comfy.base_url}/prompt", json={"prompt": IMAGE_GRAPH}).json()
        prompt_id = answer["prompt_id"]
        deadline = time.monotonic() + 5
        while not httpx.get(f"{comfy.base_url}/history/{prompt_id}").json():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        comfy.forget()
        comfy.drop_ws()
        assert httpx.get(f"{comfy.base_url}/history/{prompt_id}").json() == {}
        assert comfy.fake.submitted[0]["prompt_id"] == prompt_id
    assert not comfy.thread.is_alive()


async def test_stop_with_a_running_prompt_and_open_socket() -> None:
    fake = FakeComfyUI()
    await fake.start()
    async with aiohttp.ClientSession(base_url=fake.base_url) as session:
        ws = await _ws(session, "c1")
        prompt_id = await _submit(session, SLOW_GRAPH)
        await _events(ws, _is("executing", prompt_id))
        await asyncio.wait_for(fake.stop(), 5)
        assert (await ws.receive(timeout=5)).type in {
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
        }
        await ws.close()
