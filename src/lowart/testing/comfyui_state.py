"""What the fake ComfyUI knows about prompts: node classes, validation, plans, history and PNGs.

Validation, as ComfyUI's, checks in order: a ``prompt`` key (``no_prompt``), an object
(``invalid_prompt``), known class types (``missing_node_type``), an output node
(``prompt_no_outputs``), then each node: a choice input given a value outside its list
(``value_not_in_list``) or an INT under its minimum (``value_smaller_than_min``,
comfyui_inputs.py) fails the outputs downstream; ``FailValidation`` fails every output (400
``prompt_outputs_failed_validation``); ``PartialFail`` is an output that fails alone, so next to
a valid SaveImage the prompt is accepted with non-empty ``node_errors``. Other inputs are not
checked and may be missing.
"""

from __future__ import annotations

import hashlib
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TypedDict, TypeGuard

from lowart.testing.comfyui_inputs import input_errors

JsonObject = dict[str, object]
InputType = str | list[str]  # a type name, or the choices of a combo input

IMAGE_OUTPUTS = {"SaveImage": "output", "PreviewImage": "temp"}
OUTPUT_NODES = frozenset({*IMAGE_OUTPUTS, "PartialFail"})
LATENT_SOURCES = frozenset({"EmptyImage", "EmptyLatentImage"})
FILE_TYPES = frozenset({"output", "input", "temp"})
CHECKPOINTS = ["fake.safetensors", "sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"]
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"]
SCHEDULERS = ["normal", "karras", "exponential", "simple"]
_LATENT: dict[str, InputType] = {"width": "INT", "height": "INT", "batch_size": "INT"}
_SAMPLER: dict[str, InputType] = {"model": "MODEL", "seed": "INT", "steps": "INT", "cfg": "FLOAT"}
_SAMPLER |= {"sampler_name": SAMPLERS, "scheduler": SCHEDULERS, "denoise": "FLOAT"}
_SAMPLER |= {"positive": "CONDITIONING", "negative": "CONDITIONING", "latent_image": "LATENT"}
INPUTS: dict[str, dict[str, InputType]] = {
    "EmptyImage": _LATENT,
    "ImageInvert": {"image": "IMAGE"},
    "SaveImage": {"images": "IMAGE", "filename_prefix": "STRING"},
    "PreviewImage": {"images": "IMAGE"},
    "KSampler": _SAMPLER,
    "CheckpointLoaderSimple": {"ckpt_name": CHECKPOINTS},
    "CLIPTextEncode": {"text": "STRING", "clip": "CLIP"},
    "EmptyLatentImage": _LATENT,
    "VAEDecode": {"samples": "LATENT", "vae": "VAE"},
    "FailValidation": {},
    "PartialFail": {},
    "SlowNode": {"seconds": "FLOAT"},
    "ErrorNode": {"message": "STRING"},
}
_OUTPUT_TYPES = {"EmptyImage": "IMAGE", "ImageInvert": "IMAGE", "KSampler": "LATENT"}
_OUTPUT_TYPES |= {"CLIPTextEncode": "CONDITIONING", "EmptyLatentImage": "LATENT"}
_OUTPUT_TYPES |= {"CheckpointLoaderSimple": "MODEL CLIP VAE", "VAEDecode": "IMAGE"}


class NodeError(TypedDict):
    """One ``node_errors`` entry."""

    errors: list[JsonObject]
    dependent_outputs: list[str]
    class_type: str


class PromptRejected(Exception):
    """A ``POST /prompt`` the server answers with 400 and ``body``."""

    def __init__(self, body: JsonObject) -> None:
        super().__init__(body.get("error"))
        self.body = body


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of an API-format graph."""

    node_id: str
    class_type: str
    inputs: JsonObject


@dataclass(frozen=True, slots=True)
class QueuedPrompt:
    """A pending or running prompt: ComfyUI's queue item plus its execution plan."""

    number: float
    prompt_id: str
    graph: JsonObject
    extra_data: JsonObject
    outputs: list[str]
    nodes: dict[str, NodeSpec]
    plan: list[str]

    @property
    def client_id(self) -> str | None:
        """The ``client_id`` the prompt was submitted with, if any."""
        value = self.extra_data.get("client_id")
        return value if isinstance(value, str) else None

    def item(self) -> list[object]:
        """``[number, prompt_id, prompt, extra_data, outputs_to_execute]``."""
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class Run:
    """One execution of a prompt: its history messages, outputs and progress so far."""

    prompt: QueuedPrompt
    messages: list[object] = field(default_factory=list)
    outputs: JsonObject = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    current: NodeSpec | None = None


def now_ms() -> int:
    """Wall-clock milliseconds, as ComfyUI's timestamps."""
    return int(time.time() * 1000)


def error_body(kind: str, message: str, details: str = "", **extra: object) -> JsonObject:
    """A 400 body: ``{"error": {type, message, details, extra_info}, "node_errors": {}}``."""
    error = {"type": kind, "message": message, "details": details, "extra_info": extra}
    return {"error": error, "node_errors": {}}


def check_submission(fields: JsonObject, counter: int) -> tuple[QueuedPrompt, dict[str, NodeError]]:
    """Validate a ``POST /prompt`` body into the prompt to queue and its ``node_errors``.

    Raises ``PromptRejected`` with the 400 body. ``counter`` numbers the prompt unless the body
    gives a ``number``; ``front`` makes it negative, so the prompt runs next.
    """
    nodes, outputs, node_errors = _validate(fields)
    given, prompt_id = fields.get("number"), fields.get("prompt_id")
    extra_data = dict(_as_object(fields.get("extra_data"))) | {"create_time": now_ms()}
    if isinstance(fields.get("client_id"), str):
        extra_data["client_id"] = fields["client_id"]
    if not isinstance(given, int | float) or isinstance(given, bool):
        given = -counter if fields.get("front") is True else counter
    prompt = QueuedPrompt(
        number=given,
        prompt_id=prompt_id if isinstance(prompt_id, str) else str(uuid.uuid4()),
        graph=_as_object(fields["prompt"]),
        extra_data=extra_data,
        outputs=outputs,
        nodes=nodes,
        plan=execution_order(nodes, set(node_errors)),
    )
    return prompt, node_errors


def _validate(fields: JsonObject) -> tuple[dict[str, NodeSpec], list[str], dict[str, NodeError]]:
    graph = fields.get("prompt")
    if "prompt" not in fields:
        raise PromptRejected(error_body("no_prompt", "No prompt provided", "No prompt provided"))
    if not isinstance(graph, dict):
        raise PromptRejected(error_body("invalid_prompt", "Prompt must be an object"))
    nodes = {str(node_id): _parse_node(str(node_id), raw) for node_id, raw in graph.items()}
    outputs = [node_id for node_id, spec in nodes.items() if spec.class_type in OUTPUT_NODES]
    if not outputs:
        raise PromptRejected(error_body("prompt_no_outputs", "Prompt has no outputs"))
    node_errors = {nid: entry for nid in nodes if (entry := _node_error(nodes, nid, outputs))}
    failed = {out for entry in node_errors.values() for out in entry["dependent_outputs"]}
    good = [node_id for node_id in outputs if node_id not in failed]
    if not good:
        reasons = [
            f"{e['message']}: {e['details']}" for n in node_errors.values() for e in n["errors"]
        ]
        message = "Prompt outputs failed validation"
        body = error_body("prompt_outputs_failed_validation", message, "\n".join(reasons))
        raise PromptRejected(body | {"node_errors": node_errors})
    return nodes, good, node_errors


def _parse_node(node_id: str, raw: object) -> NodeSpec:
    node = _as_object(raw)
    class_type, inputs = node.get("class_type"), node.get("inputs")
    title = _as_object(node.get("_meta")).get("title")
    if isinstance(class_type, str) and class_type in INPUTS:
        return NodeSpec(node_id, class_type, dict(_as_object(inputs)))
    name = class_type if isinstance(class_type, str) else None
    message = (
        f"Node '{name}' not found. The custom node may not be installed."
        if name
        else f"Node '{title or node_id}' has no class_type. The workflow may be corrupted."
    )
    extra = {"node_id": node_id, "class_type": name, "node_title": title or name}
    raise PromptRejected(error_body("missing_node_type", message, f"Node ID '#{node_id}'", **extra))


def _node_error(nodes: dict[str, NodeSpec], node_id: str, outputs: list[str]) -> NodeError | None:
    """The ``node_errors`` entry of one node, or None when it is valid."""
    spec, errors = nodes[node_id], []
    for name, value in spec.inputs.items():
        if not is_link(value):
            kind = INPUTS[spec.class_type].get(name)
            errors += input_errors(spec.class_type, kind, name, value)
    dependents = [o for o in outputs if o == node_id or node_id in ancestors(nodes, o)]
    if spec.class_type in ("FailValidation", "PartialFail"):
        message = f"{spec.class_type} always fails validation"
        errors.append(_error("custom_validation_failed", message, "", {}))
        dependents = outputs if spec.class_type == "FailValidation" else [node_id]
    if not (errors and dependents):
        return None
    return {"errors": errors, "dependent_outputs": dependents, "class_type": spec.class_type}


def _error(kind: str, message: str, details: str, extra: JsonObject) -> JsonObject:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _as_object(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def is_link(value: object) -> TypeGuard[list[object]]:
    """A link is ``[source_node_id, output_slot]``; anything else is a widget value."""
    return isinstance(value, list) and len(value) == 2 and type(value[1]) is int


def ancestors(nodes: dict[str, NodeSpec], node_id: str) -> list[str]:
    """Every node ``node_id`` depends on through links, nearest first."""
    seen: list[str] = []
    pending = [node_id]
    while pending:
        spec = nodes.get(pending.pop(0))
        links = [str(v[0]) for v in spec.inputs.values() if is_link(v)] if spec else []
        for source in links:
            if source in nodes and source not in seen and source != node_id:
                seen.append(source)
                pending.append(source)
    return seen


def execution_order(nodes: dict[str, NodeSpec], skip: set[str]) -> list[str]:
    """Every node not in ``skip``, each after the nodes it links to (graph order otherwise).

    Unlike ComfyUI (ancestors of outputs only), so an unlinked SlowNode or ErrorNode acts too.
    """
    order: list[str] = []
    for node_id in nodes:
        for dependency in [*reversed(ancestors(nodes, node_id)), node_id]:
            if dependency not in order and dependency not in skip:
                order.append(dependency)
    return order


def batch_size(nodes: dict[str, NodeSpec], node_id: str) -> int:
    """The ``batch_size`` of the nearest upstream EmptyImage/EmptyLatentImage, else 1."""
    for source in ancestors(nodes, node_id):
        if nodes[source].class_type in LATENT_SOURCES:
            return max(1, _integer(nodes[source].inputs.get("batch_size")) or 1)
    return 1


def seed(nodes: dict[str, NodeSpec], node_id: str) -> int:
    """The ``seed`` (or ``noise_seed``) of the nearest upstream node that has one, else 0."""
    for source in ancestors(nodes, node_id):
        inputs = nodes[source].inputs
        value = _integer(inputs.get("seed", inputs.get("noise_seed")))
        if value is not None:
            return value
    return 0


def steps(spec: NodeSpec, default: int) -> int:
    """Sampler steps: ``inputs.steps`` when it is a number, ``default`` for a KSampler, else 0."""
    if "steps" not in spec.inputs and spec.class_type != "KSampler":
        return 0
    value = _integer(spec.inputs.get("steps"))
    return max(0, value) if value is not None else default


def seconds(spec: NodeSpec) -> float:
    """How long a ``SlowNode`` runs (``inputs.seconds``, default 1); other nodes take no time."""
    value = spec.inputs.get("seconds", 1.0) if spec.class_type == "SlowNode" else 0.0
    return max(0.0, float(value)) if isinstance(value, int | float) else 1.0


def failure(run: Run) -> JsonObject:
    """The ``execution_interrupted`` fields (besides ``prompt_id`` and ``timestamp``)."""
    node = run.current
    return {
        "node_id": node.node_id if node else None,
        "node_type": node.class_type if node else None,
        "executed": list(run.executed),
    }


def node_error(run: Run) -> JsonObject:
    """The ``execution_error`` fields of an ``ErrorNode`` (message from ``inputs.message``)."""
    inputs = run.current.inputs if run.current else {}
    message = str(inputs.get("message", "ErrorNode failed on purpose"))
    trace = ['  File "fake_nodes.py", line 1, in execute\n', f"RuntimeError: {message}\n"]
    return failure(run) | {
        "exception_message": message,
        "exception_type": "RuntimeError",
        "traceback": trace,
        "current_inputs": inputs,
        "current_outputs": {},
    }


def save_images(
    nodes: dict[str, NodeSpec],
    spec: NodeSpec,
    files: dict[tuple[str, str, str], bytes],
    counters: dict[tuple[str, str, str], int],
) -> list[JsonObject]:
    """Store a SaveImage/PreviewImage node's PNGs in ``files``; return their references.

    One image per upstream ``batch_size``, named ``<filename_prefix>_<counter:05>_.png`` (a
    ``/`` in the prefix makes a subfolder); PreviewImage writes ``ComfyUI_temp_…`` as ``temp``.
    """
    kind = IMAGE_OUTPUTS[spec.class_type]
    prefix = str(spec.inputs.get("filename_prefix", "ComfyUI")) if kind == "output" else ""
    subfolder, _, name = prefix.rpartition("/") if prefix else ("", "", "ComfyUI_temp")
    images: list[JsonObject] = []
    for index in range(batch_size(nodes, spec.node_id)):
        counters[kind, subfolder, name] = count = counters.get((kind, subfolder, name), 0) + 1
        filename = f"{name}_{count:05d}_.png"
        files[kind, subfolder, filename] = png_bytes(image_color(seed(nodes, spec.node_id), index))
        images.append({"filename": filename, "subfolder": subfolder, "type": kind})
    return images


def history_entry(run: Run) -> JsonObject:
    """The ``/history`` entry of a finished run (``success`` if its last message says so)."""
    last = run.messages[-1] if run.messages else None
    success = isinstance(last, list) and last[0] == "execution_success"
    meta = {
        nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
        for nid in run.outputs
    }
    status_str = "success" if success else "error"
    status = {"status_str": status_str, "completed": success, "messages": run.messages}
    return {"prompt": run.prompt.item(), "outputs": run.outputs, "status": status, "meta": meta}


def history_page(history: dict[str, JsonObject], max_items: int | None, offset: int) -> JsonObject:
    """``GET /history``: ``max_items`` entries from ``offset`` (default: the newest ones)."""
    keys = list(history)
    start = max(offset, 0) if max_items is None or offset >= 0 else max(len(keys) - max_items, 0)
    return {key: history[key] for key in keys[start:][:max_items]}


def object_info(class_type: str) -> JsonObject:
    """The ``/object_info`` description of one known class (every input ``required``)."""
    inputs, outputs = INPUTS[class_type], _OUTPUT_TYPES.get(class_type, "").split()
    return {
        "input": {"required": {name: [kind, {}] for name, kind in inputs.items()}},
        "input_order": {"required": list(inputs)},
        "output": outputs,
        "output_is_list": [False] * len(outputs),
        "output_name": outputs,
        "name": class_type,
        "display_name": class_type,
        "description": "",
        "python_module": "nodes",
        "category": "fake",
        "output_node": class_type in OUTPUT_NODES,
    }


def bad_view_request(kind: str, filename: str, subfolder: str) -> bool:
    """A ``/view`` query to refuse: an unknown type, no filename, ``..`` or an absolute path."""
    absolute = any(
        path.startswith(("/", "\\")) or path[1:2] == ":" for path in (filename, subfolder)
    )
    return kind not in FILE_TYPES or not filename or ".." in filename + subfolder or absolute


def image_color(seed_value: int, index: int) -> bytes:
    """An RGB colour that differs between seeds and between images of one batch."""
    return hashlib.sha256(f"{seed_value}:{index}".encode()).digest()[:3]


def png_bytes(rgb: bytes, size: int = 8) -> bytes:
    """A valid ``size`` x ``size`` PNG of one solid RGB colour."""
    rows = b"".join(b"\x00" + rgb * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    chunks = (_chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(rows)), _chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
