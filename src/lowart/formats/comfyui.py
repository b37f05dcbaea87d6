"""ComfyUI wire formats, no I/O: workflow templating, submit answers, history and WS events.

The gateway fills a model's API-format workflow from an OpenAI Images request, reads ComfyUI's
answers to ``POST /prompt`` (a 200 may still carry ``node_errors``), takes the outputs from the
history entry (the source of truth) and follows one prompt's WebSocket events.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from lowart.errors import InvalidRequest, UpstreamError

PLACEHOLDERS: Mapping[str, str] = {
    "{{prompt}}": "prompt",
    "{{negative_prompt}}": "negative_prompt",
    "{{seed}}": "seed",
    "{{width}}": "width",
    "{{height}}": "height",
    "{{batch_size}}": "batch_size",
}
SEED_MAX = 2**64 - 1
MIN_SIDE = 1  # no floor of our own: ComfyUI checks its nodes' minimums (a refusal is a 400)
MAX_SIDE = 8192
MAX_IMAGES = 10
REF_TYPES = frozenset({"output", "temp", "input"})

_SIZE = re.compile(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_MEDIA_PREFIXES = ("image/", "video/", "audio/")
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True, slots=True)
class OutputRef:
    """One file a prompt produced, as ``/view`` addresses it."""

    filename: str
    subfolder: str
    type: str


@dataclass(frozen=True, slots=True)
class WsEvent:
    """One WebSocket event that matters for a prompt: progress, its end, or its failure."""

    kind: Literal["progress", "done", "failed"]
    fraction: float = 0.0  # progress only: 0..1
    message: str = ""  # failed only


# --- templating -------------------------------------------------------------------------------


def render_workflow(
    template: Mapping[str, object], values: Mapping[str, object]
) -> dict[str, object]:
    """A deep copy of ``template`` with every placeholder input replaced by its value.

    Only an input value that *is* a placeholder string is replaced, by the value itself, so
    numbers stay JSON numbers. Links (``[node_id, slot]``), ``{"__value__": [...]}`` and
    everything outside ``inputs`` are copied untouched; the template is never mutated.
    """
    return {node_id: _render_node(node, values) for node_id, node in template.items()}


def _render_node(node: object, values: Mapping[str, object]) -> object:
    if not isinstance(node, Mapping):
        return copy.deepcopy(node)
    rendered = {key: copy.deepcopy(value) for key, value in node.items() if key != "inputs"}
    inputs = node.get("inputs")
    if isinstance(inputs, Mapping):
        rendered["inputs"] = {name: _render_input(v, values) for name, v in inputs.items()}
    elif "inputs" in node:
        rendered["inputs"] = copy.deepcopy(inputs)
    return rendered


def _render_input(value: object, values: Mapping[str, object]) -> object:
    if not isinstance(value, str) or value not in PLACEHOLDERS:
        return copy.deepcopy(value)
    name = PLACEHOLDERS[value]
    filled = values.get(name)
    if filled is None:
        raise InvalidRequest(
            f"The model's workflow needs '{name}', but the request gives none.", param=name
        )
    return copy.deepcopy(filled)


def image_values(
    request: Mapping[str, object], defaults: Mapping[str, object], random_seed: Callable[[], int]
) -> dict[str, object]:
    """Template values from an OpenAI Images request, merged over the model's ``params.defaults``.

    ``n`` gives ``batch_size``, ``size`` ("WxH") gives ``width`` and ``height``; the seed is
    ``random_seed()`` unless the request fixes one. ``response_format`` is not a template value.
    """
    values: dict[str, object] = {"batch_size": 1, "negative_prompt": ""}  # OpenAI's n defaults to 1
    values.update({k: v for k, v in defaults.items() if k not in ("n", "size", "seed")})
    values.update(_request_values(defaults, "params.defaults."))
    values.update(_request_values(request, ""))
    prompt = request.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' is required and must be a non-empty string.", param="prompt")
    values["prompt"] = prompt
    # Never a default seed: an identical graph is answered from ComfyUI's cache, with no new image.
    seed = request.get("seed")
    values["seed"] = random_seed() if seed is None else _int_in(seed, 0, SEED_MAX, "seed")
    return values


def random_seed() -> int:
    """A seed drawn uniformly from ComfyUI's whole range, ``[0, 2**64 - 1]``."""
    return secrets.randbelow(SEED_MAX + 1)


def _request_values(source: Mapping[str, object], prefix: str) -> dict[str, object]:
    values: dict[str, object] = {}
    if source.get("n") is not None:
        values["batch_size"] = _int_in(source["n"], 1, MAX_IMAGES, prefix + "n")
    size = source.get("size")
    if size is not None and size != "auto":
        values["width"], values["height"] = _size(size, prefix + "size")
    negative = source.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str):
            raise InvalidRequest(
                "'negative_prompt' must be a string.", param=prefix + "negative_prompt"
            )
        values["negative_prompt"] = negative
    return values


def _int_in(value: object, low: int, high: int, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"'{param}' must be an integer from {low} to {high}.", param=param)
    return value


def _size(value: object, param: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidRequest(f"'{param}' must look like '1024x1024' (width x height).", param=param)
    width, height = int(match[1]), int(match[2])
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidRequest(
            f"'{param}': width and height must be from {MIN_SIDE} to {MAX_SIDE}.", param=param
        )
    return width, height


# --- POST /prompt -----------------------------------------------------------------------------


def parse_submit(status: int, body: object) -> str:
    """The ``prompt_id`` of an accepted prompt.

    Raises InvalidRequest with ComfyUI's message and node errors on a 400, and on a 200 that
    carries ``node_errors`` (part of the workflow was rejected); UpstreamError on anything else.
    """
    answer = body if isinstance(body, Mapping) else {}
    node_errors = answer.get("node_errors")
    if status == 400 or (status == 200 and node_errors):
        raise InvalidRequest(submit_error_message(answer))
    prompt_id = answer.get("prompt_id")
    if status != 200:
        raise UpstreamError(f"ComfyUI answered POST /prompt with status {status}.")
    if not isinstance(prompt_id, str) or not prompt_id:
        raise UpstreamError("ComfyUI accepted the prompt without a prompt_id.")
    return prompt_id


def submit_error_message(body: Mapping[str, object]) -> str:
    """ComfyUI's rejection as one line: its error message, then each node's reasons."""
    parts = [_error_text(body.get("error"))]
    node_errors = body.get("node_errors")
    if isinstance(node_errors, Mapping):
        parts.extend(_node_error_texts(node_errors))
    text = "; ".join(part for part in parts if part)
    return f"ComfyUI rejected the workflow: {text or 'no reason given'}"


def _error_text(error: object) -> str:
    if isinstance(error, str):
        return error
    if not isinstance(error, Mapping):
        return ""
    message = _text(error.get("message")) or _text(error.get("type"))
    details = _text(error.get("details"))
    return f"{message}: {details}" if message and details else message or details


def _node_error_texts(node_errors: Mapping[str, object]) -> Iterator[str]:
    for node_id, node in node_errors.items():
        if not isinstance(node, Mapping):
            continue
        errors = node.get("errors")
        where = f"node {node_id}"
        if class_type := _text(node.get("class_type")):
            where += f" ({class_type})"
        for error in errors if isinstance(errors, list) else []:
            if text := _error_text(error):
                yield f"{where}: {text}"


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


# --- history and /view ------------------------------------------------------------------------


def outputs_from_history(entry: Mapping[str, object]) -> list[OutputRef]:
    """Every file reference (images, gifs, video, audio...) in a history entry's outputs."""
    outputs = entry.get("outputs")
    refs: list[OutputRef] = []
    for node_output in outputs.values() if isinstance(outputs, Mapping) else []:
        if not isinstance(node_output, Mapping):
            continue
        for items in node_output.values():
            refs.extend(_refs(items))
    return refs


def _refs(items: object) -> Iterator[OutputRef]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
            subfolder = item.get("subfolder")
            kind = item.get("type")
            yield OutputRef(
                filename=str(item["filename"]),
                subfolder=subfolder if isinstance(subfolder, str) else "",
                type=kind if isinstance(kind, str) else "output",
            )


def history_failure(entry: Mapping[str, object]) -> str | None:
    """Why a finished prompt failed (its exception message), or None when it succeeded."""
    status = entry.get("status")
    if not isinstance(status, Mapping) or status.get("status_str") != "error":
        return None
    messages = status.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], Mapping):
            name, data = message
            if name == "execution_error":
                return _exception_text(data)
            if name == "execution_interrupted":
                return _interrupted_text(data)
    return "ComfyUI reported that the run failed."


def _exception_text(data: Mapping[str, object]) -> str:
    message = _text(data.get("exception_message")) or "no message"
    kind = _text(data.get("exception_type"))
    node_type = _text(data.get("node_type"))
    where = f"{node_type} (node {data.get('node_id')})" if node_type else "a node"
    return f"ComfyUI failed in {where}: {kind + ': ' if kind else ''}{message}"


def _interrupted_text(data: Mapping[str, object]) -> str:
    node_id = data.get("node_id")
    return "ComfyUI interrupted the run" + (f" at node {node_id}." if node_id else ".")


def validate_ref(ref: OutputRef) -> None:
    """Refuse a file reference that could reach outside ComfyUI's output, temp or input roots."""
    name = ref.filename
    if not name or "/" in name or "\\" in name or ".." in name or "\x00" in name:
        raise UpstreamError(f"ComfyUI returned an unsafe file name: {name!r}.")
    if _WINDOWS_DRIVE.match(name):
        raise UpstreamError(f"ComfyUI returned an unsafe file name: {name!r}.")
    if not _safe_subfolder(ref.subfolder):
        raise UpstreamError(f"ComfyUI returned an unsafe subfolder: {ref.subfolder!r}.")
    if ref.type not in REF_TYPES:
        raise UpstreamError(f"ComfyUI returned an unknown file type: {ref.type!r}.")


def _safe_subfolder(subfolder: str) -> bool:
    if subfolder.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(subfolder) or "\x00" in subfolder:
        return False
    return ".." not in re.split(r"[/\\]", subfolder)


def history_entry(body: object, prompt_id: str) -> Mapping[str, object] | None:
    """The prompt's entry in a ``GET /history/{prompt_id}`` answer; None while queued or running."""
    entry = body.get(prompt_id) if isinstance(body, Mapping) else None
    return entry if isinstance(entry, Mapping) else None


def queue_position(body: object, prompt_id: str) -> Literal["running", "queued"] | None:
    """Where ``GET /queue`` has the prompt: running, pending ("queued"), or nowhere."""
    if not isinstance(body, Mapping):
        return None
    if _in_queue(body.get("queue_running"), prompt_id):
        return "running"
    if _in_queue(body.get("queue_pending"), prompt_id):
        return "queued"
    return None


def _in_queue(items: object, prompt_id: str) -> bool:
    return isinstance(items, list) and any(
        isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in items
    )


def content_type_of(header: str | None, data: bytes) -> str:
    """A file's media type: its signature first, else the server's image/video/audio type.

    Anything else (HTML, SVG, scripts) becomes ``application/octet-stream``: the gateway serves
    these files again from its own origin.
    """
    if sniffed := sniff_content_type(data):
        return sniffed
    media = (header or "").split(";", 1)[0].strip().lower()
    if media.startswith(_MEDIA_PREFIXES) and media != "image/svg+xml":
        return media
    return "application/octet-stream"


def sniff_content_type(data: bytes) -> str | None:
    """The image type given by the file's signature (PNG, JPEG, WEBP, GIF), if any."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)


# --- WebSocket events -------------------------------------------------------------------------


def ws_event(text: str, prompt_id: str) -> WsEvent | None:
    """The meaning of one text frame for ``prompt_id``; None for other prompts and other events."""
    try:
        frame: object = json.loads(text)
    except ValueError:
        return None
    if not isinstance(frame, Mapping) or not isinstance(frame.get("data"), Mapping):
        return None
    data: Mapping[str, object] = frame["data"]
    if data.get("prompt_id") != prompt_id:
        return None
    return _event_of(frame.get("type"), data)


def _event_of(kind: object, data: Mapping[str, object]) -> WsEvent | None:
    if kind == "progress":
        return _progress(data.get("value"), data.get("max"))
    if kind == "execution_success" or (kind == "executing" and data.get("node") is None):
        return WsEvent("done")
    if kind == "execution_error":
        return WsEvent("failed", message=_exception_text(data))
    if kind == "execution_interrupted":
        return WsEvent("failed", message=_interrupted_text(data))
    return None


def _progress(value: object, maximum: object) -> WsEvent | None:
    numbers = (int, float)
    if not isinstance(value, numbers) or not isinstance(maximum, numbers) or maximum <= 0:
        return None
    return WsEvent("progress", fraction=min(max(float(value) / float(maximum), 0.0), 1.0))
