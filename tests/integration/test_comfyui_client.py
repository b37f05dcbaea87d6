"""ComfyUIClient against the fake ComfyUI server: submit, follow, locate, fetch and cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from lowart.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from lowart.formats.comfyui import OutputRef
from lowart.model_entry import ModelEntry, Timeouts
from lowart.providers.comfyui_client import ComfyUIClient
from lowart.providers.http import new_session
from lowart.testing.comfyui_fake import FakeComfyUI

POLL_S = 0.05
Graph = dict[str, object]


def image_graph(*, steps: int = 5, batch: int = 2, slow_s: float = 0.0) -> Graph:
    graph: Graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": batch},
        },
        "2": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": steps}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "gw"}},
    }
    if slow_s:
        graph["5"] = {"class_type": "SlowNode", "inputs": {"seconds": slow_s}}
    return graph


def slow_graph(seconds: float = 5.0) -> Graph:
    return image_graph(steps=0, batch=1, slow_s=seconds)


class Recorder:
    def __init__(self) -> None:
        self.values: list[float] = []

    async def __call__(self, fraction: float) -> None:
        self.values.append(fraction)


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    server = FakeComfyUI(step_delay=0.01)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    upstream = new_session()
    yield upstream
    await upstream.close()


@pytest.fixture
def model(fake: FakeComfyUI) -> ModelEntry:
    return ModelEntry(
        model_id="comfy-test",
        vendor="comfyui",
        base_url=fake.base_url + "/",
        api_key=None,
        upstream_model="comfy-test",
        params={},
        timeouts=Timeouts(connect=5.0, first_byte=5.0, idle=5.0, total=20.0),
        enabled=True,
    )


@pytest.fixture
def client(session: aiohttp.ClientSession) -> ComfyUIClient:
    return ComfyUIClient(session, "gw-test")


async def until(client: ComfyUIClient, model: ModelEntry, prompt_id: str, where: str) -> None:
    for _ in range(200):
        if await client.locate(model, prompt_id) == where:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"prompt {prompt_id} never became {where}")


async def test_run_reports_rising_progress_and_returns_outputs(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    progress = Recorder()
    submitted: list[str] = []

    async def remember(prompt_id: str) -> None:
        submitted.append(prompt_id)

    prompt_id, refs = await client.run(
        model, image_graph(), progress, on_submitted=remember, poll_s=POLL_S
    )
    assert submitted == [prompt_id]
    assert refs == [
        OutputRef("gw_00001_.png", "", "output"),
        OutputRef("gw_00002_.png", "", "output"),
    ]
    assert progress.values[-1] == 1.0
    assert len(progress.values) >= 3  # real step progress, then the end
    assert progress.values == sorted(set(progress.values))
    sent = fake.submitted[-1]
    assert sent["prompt_id"] == prompt_id
    assert isinstance(sent["client_id"], str)
    assert sent["client_id"].startswith("gw-test-")


async def test_rejected_workflow_is_invalid_request_with_comfyuis_message(
    client: ComfyUIClient, model: ModelEntry
) -> None:
    graph = image_graph()
    graph["4"] = {"class_type": "FailValidation", "inputs": {}}
    with pytest.raises(InvalidRequest) as caught:
        await client.run(model, graph, Recorder(), poll_s=POLL_S)
    assert "Prompt outputs failed validation" in caught.value.message
    assert "FailValidation always fails" in caught.value.message


async def test_bad_input_value_names_the_node(client: ComfyUIClient, model: ModelEntry) -> None:
    graph = image_graph()
    graph["2"] = {"class_type": "KSampler", "inputs": {"sampler_name": "nope"}}
    graph["8"] = {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}
    del graph["9"], graph["3"], graph["1"]
    with pytest.raises(InvalidRequest, match=r"node 2 \(KSampler\): Value not in list"):
        await client.submit(model, graph)


async def test_node_errors_on_a_200_are_rejected_and_the_prompt_dropped(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    graph = slow_graph(5.0)
    graph["4"] = {"class_type": "PartialFail", "inputs": {}}
    with pytest.raises(InvalidRequest, match="PartialFail always fails"):
        await client.run(model, graph, Recorder(), poll_s=POLL_S)
    prompt_id = fake.submitted[-1]["prompt_id"]
    assert isinstance(prompt_id, str)
    assert fake.submitted[-1]["status"] == 200
    await until(client, model, prompt_id, "done")
    assert "interrupted" in str(fake.history[prompt_id]["status"])


async def test_error_node_gives_upstream_error_with_its_message(
    client: ComfyUIClient, model: ModelEntry
) -> None:
    graph = image_graph()
    graph["6"] = {"class_type": "ErrorNode", "inputs": {"message": "CUDA out of memory"}}
    with pytest.raises(UpstreamError, match="CUDA out of memory"):
        await client.run(model, graph, Recorder(), poll_s=POLL_S)


async def test_locate_done_running_queued_and_lost(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    finished, _ = await client.run(model, image_graph(), Recorder(), poll_s=POLL_S)
    assert await client.locate(model, finished) == "done"
    first = await client.submit(model, slow_graph())
    second = await client.submit(model, slow_graph())
    await until(client, model, first, "running")
    assert await client.locate(model, second) == "queued"
    fake.forget()
    assert await client.locate(model, first) == "lost"
    assert await client.locate(model, second) == "lost"
    assert await client.locate(model, "never-submitted") == "lost"


async def test_fetch_an_output_png(client: ComfyUIClient, model: ModelEntry) -> None:
    _, refs = await client.run(model, image_graph(batch=1), Recorder(), poll_s=POLL_S)
    data, content_type = await client.fetch(model, refs[0])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert content_type == "image/png"
    with pytest.raises(UpstreamError, match="larger than 16 bytes"):
        await client.fetch(model, refs[0], max_bytes=16)


async def test_the_clients_cap_applies_to_its_json_answers(
    session: aiohttp.ClientSession, model: ModelEntry
) -> None:
    capped = ComfyUIClient(session, "gw-capped", max_body=16)  # UPSTREAM_MAX_BODY_BYTES
    with pytest.raises(UpstreamError, match="larger than 16 bytes"):
        await capped.locate(model, "never-submitted")  # /queue's answer is over 16 bytes


async def test_fetch_refuses_unsafe_and_missing_files(
    client: ComfyUIClient, model: ModelEntry
) -> None:
    with pytest.raises(UpstreamError, match="unsafe"):
        await client.fetch(model, OutputRef("../secret.txt", "", "input"))
    with pytest.raises(UpstreamError, match="unsafe subfolder"):
        await client.fetch(model, OutputRef("secret.txt", "../..", "input"))
    with pytest.raises(UpstreamError, match="404"):
        await client.fetch(model, OutputRef("missing.png", "", "output"))
    with pytest.raises(UpstreamError, match="unknown file type"):
        await client.fetch(model, OutputRef("secret.txt", "", "models"))


async def test_cancel_queued_then_running(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    running = await client.submit(model, slow_graph())
    queued = await client.submit(model, slow_graph())
    await until(client, model, running, "running")
    assert await client.cancel(model, queued) == "dequeued"
    assert await client.locate(model, queued) == "lost"
    assert await client.cancel(model, running) == "interrupted"
    with pytest.raises(UpstreamError, match="interrupted"):
        await client.wait(model, running, Recorder(), poll_s=POLL_S)
    assert await client.cancel(model, running) == "absent"
    assert fake.running is None


async def test_ws_dropped_mid_run_completes_by_polling(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    values: list[float] = []

    async def drop_on_first(fraction: float) -> None:
        if not values:
            await fake.drop_ws()
        values.append(fraction)

    with capture_logs() as logs:
        _, refs = await client.run(
            model, image_graph(steps=40, slow_s=0.3), drop_on_first, poll_s=POLL_S
        )
    assert len(refs) == 2
    assert values[-1] == 1.0
    assert values == sorted(set(values))
    assert any(entry["event"] == "comfyui_ws_dropped" for entry in logs)


async def test_no_end_event_still_completes_from_history(
    session: aiohttp.ClientSession, model: ModelEntry
) -> None:
    quiet = FakeComfyUI(step_delay=0.01, send_success=False, send_executing_none=False)
    await quiet.start()
    try:
        entry = dataclasses.replace(model, base_url=quiet.base_url)
        client = ComfyUIClient(session, "gw-quiet")
        progress = Recorder()
        _, refs = await client.run(entry, image_graph(), progress, poll_s=POLL_S)
    finally:
        await quiet.stop()
    assert len(refs) == 2
    assert progress.values[-1] == 1.0


async def test_resume_waits_for_a_prompt_submitted_earlier(
    client: ComfyUIClient, model: ModelEntry
) -> None:
    prompt_id = await client.submit(model, image_graph(slow_s=0.2))
    progress = Recorder()
    refs = await client.wait(model, prompt_id, progress, poll_s=POLL_S)
    assert len(refs) == 2
    assert progress.values == [1.0]  # its events went to another socket: polling found the end
    assert await client.wait(model, prompt_id, progress, poll_s=POLL_S) == refs


async def test_a_prompt_lost_while_waiting_fails(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    async def forget_soon(fraction: float) -> None:
        fake.forget()

    graph = image_graph(steps=40, slow_s=5.0)
    with pytest.raises(UpstreamError, match="lost prompt"):
        await client.run(model, graph, forget_soon, poll_s=POLL_S)


async def test_total_timeout_is_upstream_timeout(
    client: ComfyUIClient, model: ModelEntry, fake: FakeComfyUI
) -> None:
    short = dataclasses.replace(model, timeouts=Timeouts(5.0, 5.0, 5.0, total=0.3))
    with pytest.raises(UpstreamTimeout):
        await client.run(short, slow_graph(5.0), Recorder(), poll_s=POLL_S)
    prompt_id = fake.submitted[-1]["prompt_id"]
    assert isinstance(prompt_id, str)
    assert await client.cancel(model, prompt_id) == "interrupted"


async def test_unreachable_server_is_upstream_error(
    client: ComfyUIClient, model: ModelEntry
) -> None:
    gone = dataclasses.replace(model, base_url="http://127.0.0.1:9")
    with pytest.raises(UpstreamError):
        await client.run(gone, image_graph(), Recorder(), poll_s=POLL_S)
