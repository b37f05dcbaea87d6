"""ComfyUI wire formats: templating, image values, submit answers, history, refs and WS events."""

from __future__ import annotations

import copy
import json

import pytest

from lowart.errors import InvalidRequest, UpstreamError
from lowart.formats.comfyui import (
    SEED_MAX,
    OutputRef,
    WsEvent,
    content_type_of,
    history_entry,
    history_failure,
    image_values,
    outputs_from_history,
    parse_submit,
    queue_position,
    random_seed,
    render_workflow,
    sniff_content_type,
    validate_ref,
    ws_event,
)

TEMPLATE: dict[str, object] = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "fake.safetensors"}},
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": "{{batch_size}}"},
    },
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "{{prompt}}", "clip": ["4", 1]},
        "_meta": {"title": "{{prompt}}"},
    },
    "7": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "{{negative_prompt}}", "clip": ["4", 1]},
    },
    "3": {
        "class_type": "KSampler",
        "inputs": {"seed": "{{seed}}", "steps": 20, "model": ["4", 0], "latent_image": ["5", 0]},
    },
    "9": {"class_type": "Custom", "inputs": {"list": {"__value__": ["{{prompt}}", 1]}}},
}
VALUES: dict[str, object] = {
    "prompt": "a cat",
    "negative_prompt": "blurry",
    "seed": 2**63 + 5,
    "width": 768,
    "height": 512,
    "batch_size": 2,
}


def inputs(graph: dict[str, object], node: str) -> dict[str, object]:
    entry = graph[node]
    assert isinstance(entry, dict)
    result = entry["inputs"]
    assert isinstance(result, dict)
    return result


# --- render_workflow --------------------------------------------------------------------------


def test_placeholders_become_json_values_of_their_type() -> None:
    graph = render_workflow(TEMPLATE, VALUES)
    encoded = json.loads(json.dumps(graph))
    assert encoded["5"]["inputs"] == {"width": 768, "height": 512, "batch_size": 2}
    assert encoded["3"]["inputs"]["seed"] == 2**63 + 5
    assert encoded["6"]["inputs"]["text"] == "a cat"
    assert encoded["7"]["inputs"]["text"] == "blurry"
    assert '"width": 768' in json.dumps(graph)  # a number, not "768"


def test_links_values_and_other_fields_are_untouched() -> None:
    graph = render_workflow(TEMPLATE, VALUES)
    assert inputs(graph, "6")["clip"] == ["4", 1]
    assert inputs(graph, "3")["model"] == ["4", 0]
    assert inputs(graph, "3")["steps"] == 20
    assert inputs(graph, "9")["list"] == {"__value__": ["{{prompt}}", 1]}
    node = graph["6"]
    assert isinstance(node, dict)
    assert node["_meta"] == {"title": "{{prompt}}"}
    assert node["class_type"] == "CLIPTextEncode"


def test_template_is_never_mutated_and_the_result_is_a_deep_copy() -> None:
    before = copy.deepcopy(TEMPLATE)
    graph = render_workflow(TEMPLATE, VALUES)
    assert before == TEMPLATE
    link = inputs(graph, "6")["clip"]
    assert isinstance(link, list)
    link.append("changed")
    inputs(graph, "4")["ckpt_name"] = "other"
    assert before == TEMPLATE
    assert render_workflow(TEMPLATE, VALUES) == render_workflow(TEMPLATE, VALUES)


def test_a_value_given_as_a_list_is_copied_too() -> None:
    values = {**VALUES, "prompt": ["a", "b"]}
    graph = render_workflow(TEMPLATE, values)
    text = inputs(graph, "6")["text"]
    assert text == ["a", "b"]
    assert text is not values["prompt"]


@pytest.mark.parametrize("missing", ["negative_prompt", "seed", "width"])
def test_missing_placeholder_value_names_it(missing: str) -> None:
    values = {k: v for k, v in VALUES.items() if k != missing}
    with pytest.raises(InvalidRequest) as caught:
        render_workflow(TEMPLATE, values)
    assert caught.value.param == missing
    assert missing in caught.value.message


def test_unused_values_and_unknown_placeholders_are_fine() -> None:
    template = {"1": {"class_type": "X", "inputs": {"a": "{{other}}", "b": "x {{prompt}}"}}}
    assert render_workflow(template, {}) == template


def test_malformed_nodes_are_copied_as_they_are() -> None:
    template: dict[str, object] = {"1": "odd", "2": {"class_type": "X", "inputs": None}}
    assert render_workflow(template, VALUES) == template


# --- image_values -----------------------------------------------------------------------------


def test_image_values_from_a_full_request() -> None:
    request = {
        "prompt": "a cat",
        "n": 3,
        "size": "1024x768",
        "negative_prompt": "dog",
        "seed": 42,
        "response_format": "b64_json",
        "model": "sdxl",
    }
    values = image_values(request, {}, lambda: 7)
    assert values == {
        "prompt": "a cat",
        "batch_size": 3,
        "width": 1024,
        "height": 768,
        "negative_prompt": "dog",
        "seed": 42,
    }


def test_defaults_fill_what_the_request_leaves_out() -> None:
    defaults = {"negative_prompt": "ugly", "size": "512x512", "n": 2, "steps": 30, "seed": 1}
    values = image_values({"prompt": "p", "size": "640x480"}, defaults, lambda: 99)
    assert values == {
        "prompt": "p",
        "negative_prompt": "ugly",
        "width": 640,
        "height": 480,
        "batch_size": 2,
        "steps": 30,
        "seed": 99,  # never a default seed: the output must vary
    }


def test_defaults_may_name_template_values_directly() -> None:
    values = image_values({"prompt": "p"}, {"width": 832, "height": 1216}, lambda: 0)
    assert (values["width"], values["height"]) == (832, 1216)
    assert values["batch_size"] == 1  # OpenAI's n defaults to 1


def test_size_auto_keeps_the_defaults() -> None:
    values = image_values({"prompt": "p", "size": "auto"}, {"size": "256x256"}, lambda: 0)
    assert (values["width"], values["height"]) == (256, 256)


def test_random_seed_is_used_when_absent() -> None:
    calls: list[int] = []

    def seed() -> int:
        calls.append(1)
        return 123

    assert image_values({"prompt": "p"}, {}, seed)["seed"] == 123
    assert calls == [1]
    assert image_values({"prompt": "p", "seed": 5}, {}, seed)["seed"] == 5
    assert calls == [1]


def test_default_random_seed_covers_comfyuis_range() -> None:
    seeds = {random_seed() for _ in range(50)}
    assert all(0 <= s <= SEED_MAX for s in seeds)
    assert len(seeds) > 45
    assert any(s > 2**32 for s in seeds)


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "p", "n": 0}, "n"),
        ({"prompt": "p", "n": 11}, "n"),
        ({"prompt": "p", "n": "2"}, "n"),
        ({"prompt": "p", "n": True}, "n"),
        ({"prompt": "p", "n": 1.5}, "n"),
        ({"prompt": "p", "size": "1024"}, "size"),
        ({"prompt": "p", "size": "1024x"}, "size"),
        ({"prompt": "p", "size": "axb"}, "size"),
        ({"prompt": "p", "size": "-64x64"}, "size"),
        ({"prompt": "p", "size": "0x512"}, "size"),
        ({"prompt": "p", "size": "512x8193"}, "size"),
        ({"prompt": "p", "size": 512}, "size"),
        ({"prompt": "p", "seed": -1}, "seed"),
        ({"prompt": "p", "seed": 2**64}, "seed"),
        ({"prompt": "p", "seed": "7"}, "seed"),
        ({"prompt": "p", "negative_prompt": 3}, "negative_prompt"),
    ],
)
def test_bad_image_requests_name_the_parameter(request_body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        image_values(request_body, {}, lambda: 0)
    assert caught.value.param == param
    assert f"'{param}'" in caught.value.message


def test_size_bounds_and_spelling() -> None:
    assert image_values({"prompt": "p", "size": "64X8192"}, {}, lambda: 0)["height"] == 8192
    small = image_values({"prompt": "p", "size": " 1x63 "}, {}, lambda: 0)  # no floor: ComfyUI's
    assert (small["width"], small["height"]) == (1, 63)
    with pytest.raises(InvalidRequest):
        image_values({"prompt": "p", "size": "64x64\nx"}, {}, lambda: 0)
    assert image_values({"prompt": "p", "seed": SEED_MAX}, {}, lambda: 0)["seed"] == SEED_MAX


def test_a_bad_default_names_params_defaults() -> None:
    with pytest.raises(InvalidRequest) as caught:
        image_values({"prompt": "p"}, {"size": "big"}, lambda: 0)
    assert caught.value.param == "params.defaults.size"


# --- parse_submit -----------------------------------------------------------------------------

NODE_ERRORS = {
    "9": {
        "errors": [
            {
                "type": "required_input_missing",
                "message": "Required input is missing",
                "details": "images",
                "extra_info": {"input_name": "images"},
            }
        ],
        "dependent_outputs": ["9"],
        "class_type": "SaveImage",
    }
}


def test_accepted_prompt_gives_its_id() -> None:
    body = {"prompt_id": "abc", "number": 3, "node_errors": {}}
    assert parse_submit(200, body) == "abc"


def test_400_gives_comfyuis_message_and_node_errors() -> None:
    body = {
        "error": {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": "",
            "extra_info": {},
        },
        "node_errors": NODE_ERRORS,
    }
    with pytest.raises(InvalidRequest) as caught:
        parse_submit(400, body)
    message = caught.value.message
    assert "Prompt outputs failed validation" in message
    assert "node 9 (SaveImage): Required input is missing: images" in message


def test_200_with_node_errors_is_a_rejection() -> None:
    body = {"prompt_id": "abc", "number": 1, "node_errors": NODE_ERRORS}
    with pytest.raises(InvalidRequest) as caught:
        parse_submit(200, body)
    assert "Required input is missing" in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("no prompt", "no prompt"),
        ({"type": "no_prompt", "message": "No prompt provided", "details": ""}, "No prompt"),
        ({"type": "missing_node_type", "message": "Node 'X' not found", "details": "d"}, "d"),
        ({"type": "prompt_no_outputs"}, "prompt_no_outputs"),
    ],
)
def test_error_may_be_a_string_or_an_object(error: object, expected: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_submit(400, {"error": error, "node_errors": {}})
    assert expected in caught.value.message
    assert caught.value.message.startswith("ComfyUI rejected the workflow: ")


def test_400_without_a_json_body_still_rejects() -> None:
    with pytest.raises(InvalidRequest, match="no reason given"):
        parse_submit(400, None)


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, {"error": "boom"}), (403, None), (200, {"node_errors": {}}), (200, {"prompt_id": 3})],
)
def test_other_answers_are_upstream_errors(status: int, body: object) -> None:
    with pytest.raises(UpstreamError):
        parse_submit(status, body)


# --- history ----------------------------------------------------------------------------------

SUCCESS_ENTRY: dict[str, object] = {
    "prompt": [7, "p1", {}, {"client_id": "gw"}, ["9"]],
    "outputs": {
        "9": {"images": [{"filename": "gw_00001_.png", "subfolder": "", "type": "output"}]},
        "12": {
            "gifs": [
                {"filename": "anim.webp", "subfolder": "vid", "type": "output", "format": "x"}
            ],
            "text": ["hello"],
            "animated": [True],
        },
        "13": {"images": [{"filename": "preview.png", "subfolder": "", "type": "temp"}]},
    },
    "status": {
        "status_str": "success",
        "completed": True,
        "messages": [["execution_success", {"prompt_id": "p1"}]],
    },
}


def test_outputs_from_history_lists_every_file() -> None:
    assert outputs_from_history(SUCCESS_ENTRY) == [
        OutputRef("gw_00001_.png", "", "output"),
        OutputRef("anim.webp", "vid", "output"),
        OutputRef("preview.png", "", "temp"),
    ]
    assert history_failure(SUCCESS_ENTRY) is None


def test_outputs_tolerate_odd_shapes() -> None:
    entry = {"outputs": {"1": {"images": [{"filename": "a.png"}, {"name": "x"}]}, "2": []}}
    assert outputs_from_history(entry) == [OutputRef("a.png", "", "output")]
    assert outputs_from_history({}) == []


def test_history_failure_gives_the_exception_message() -> None:
    entry = {
        "outputs": {},
        "status": {
            "status_str": "error",
            "completed": False,
            "messages": [
                ["execution_start", {"prompt_id": "p1"}],
                [
                    "execution_error",
                    {
                        "prompt_id": "p1",
                        "node_id": "5",
                        "node_type": "ErrorNode",
                        "exception_message": "CUDA out of memory",
                        "exception_type": "RuntimeError",
                    },
                ],
            ],
        },
    }
    failure = history_failure(entry)
    assert failure is not None
    assert "CUDA out of memory" in failure
    assert "ErrorNode" in failure


def test_history_failure_reports_an_interruption() -> None:
    messages = [["execution_interrupted", {"prompt_id": "p1", "node_id": "3"}]]
    entry = {"status": {"status_str": "error", "completed": False, "messages": messages}}
    assert history_failure(entry) == "ComfyUI interrupted the run at node 3."
    bare = {"status": {"status_str": "error", "messages": []}}
    assert history_failure(bare) == "ComfyUI reported that the run failed."


def test_history_entry_and_queue_position() -> None:
    assert history_entry({"p1": SUCCESS_ENTRY}, "p1") == SUCCESS_ENTRY
    assert history_entry({}, "p1") is None
    assert history_entry(None, "p1") is None
    queue = {
        "queue_running": [[1, "run", {}, {}, ["9"]]],
        "queue_pending": [[2, "wait", {}, {}, ["9"]], [3, "next", {}, {}, ["9"]]],
    }
    assert queue_position(queue, "run") == "running"
    assert queue_position(queue, "next") == "queued"
    assert queue_position(queue, "gone") is None
    assert queue_position([], "run") is None


# --- refs and files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        OutputRef("a.png", "", "output"),
        OutputRef("ComfyUI_00001_.png", "sub/dir", "temp"),
        OutputRef("x.webp", "nested\\win", "input"),
        OutputRef("name.with.dots.png", "a..b", "output"),
    ],
)
def test_safe_refs_pass(ref: OutputRef) -> None:
    validate_ref(ref)


@pytest.mark.parametrize(
    "ref",
    [
        OutputRef("../secret", "", "output"),
        OutputRef("..", "", "output"),
        OutputRef("a/b.png", "", "output"),
        OutputRef("a\\b.png", "", "output"),
        OutputRef("/etc/passwd", "", "output"),
        OutputRef("C:evil.png", "", "output"),
        OutputRef("", "", "output"),
        OutputRef("a.png", "../up", "output"),
        OutputRef("a.png", "sub/../../up", "output"),
        OutputRef("a.png", "sub\\..\\up", "output"),
        OutputRef("a.png", "/abs", "output"),
        OutputRef("a.png", "\\abs", "output"),
        OutputRef("a.png", "C:\\abs", "output"),
        OutputRef("a.png", "", "models"),
        OutputRef("a\x00.png", "", "output"),
    ],
)
def test_unsafe_refs_are_refused(ref: OutputRef) -> None:
    with pytest.raises(UpstreamError):
        validate_ref(ref)


def test_content_types_are_sniffed_then_allow_listed() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    jpeg = b"\xff\xd8\xff\xe0rest"
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 "
    assert sniff_content_type(png) == "image/png"
    assert sniff_content_type(jpeg) == "image/jpeg"
    assert sniff_content_type(webp) == "image/webp"
    assert sniff_content_type(b"GIF89a...") == "image/gif"
    assert sniff_content_type(b"hello") is None
    assert content_type_of("application/octet-stream", png) == "image/png"
    assert content_type_of("text/html", png) == "image/png"
    assert content_type_of("video/mp4; x=1", b"....ftyp") == "video/mp4"
    assert content_type_of("text/html", b"<script>") == "application/octet-stream"
    assert content_type_of("image/svg+xml", b"<svg>") == "application/octet-stream"
    assert content_type_of(None, b"") == "application/octet-stream"


# --- WebSocket events -------------------------------------------------------------------------


def frame(kind: str, **data: object) -> str:
    return json.dumps({"type": kind, "data": data})


def test_progress_is_a_fraction() -> None:
    event = ws_event(frame("progress", value=5, max=20, prompt_id="p1", node="3"), "p1")
    assert event == WsEvent("progress", fraction=0.25)
    over = ws_event(frame("progress", value=30, max=20, prompt_id="p1"), "p1")
    assert over == WsEvent("progress", fraction=1.0)
    assert ws_event(frame("progress", value=1, max=0, prompt_id="p1"), "p1") is None


@pytest.mark.parametrize(
    "text",
    [
        frame("execution_success", prompt_id="p1", timestamp=1),
        frame("executing", node=None, display_node=None, prompt_id="p1"),
    ],
)
def test_the_end_of_a_run(text: str) -> None:
    assert ws_event(text, "p1") == WsEvent("done")


def test_failures_carry_the_message() -> None:
    error = frame(
        "execution_error",
        prompt_id="p1",
        node_id="5",
        node_type="ErrorNode",
        exception_message="boom",
        exception_type="ValueError",
    )
    event = ws_event(error, "p1")
    assert event is not None
    assert event.kind == "failed"
    assert "boom" in event.message
    stopped = ws_event(frame("execution_interrupted", prompt_id="p1", node_id="3"), "p1")
    assert stopped == WsEvent("failed", message="ComfyUI interrupted the run at node 3.")


@pytest.mark.parametrize(
    "text",
    [
        frame("progress", value=5, max=20, prompt_id="other"),
        frame("execution_success", prompt_id="other"),
        frame("execution_error", prompt_id="other", exception_message="x"),
        frame("executing", node=None, prompt_id="other"),
        frame("executing", node="3", prompt_id="p1"),
        frame("status", status={"exec_info": {"queue_remaining": 0}}, sid="abc"),
        frame("execution_start", prompt_id="p1"),
        frame("executed", node="9", output={}, prompt_id="p1"),
        frame("progress", value=5, max=20),
        '{"type": "progress"}',
        '{"type": "progress", "data": []}',
        "[1, 2]",
        "not json",
    ],
)
def test_other_frames_are_ignored(text: str) -> None:
    assert ws_event(text, "p1") is None
