"""The fake ComfyUI's checks of one widget input: a combo's choices and an INT's ``min``.

ComfyUI refuses a value outside a combo's list (``value_not_in_list``) and one under its INT
input's ``min`` (``value_smaller_than_min``: the latent nodes take sizes from 16, ``EmptyImage``
from 1). The gateway has no size floor of its own and passes such a refusal on as a 400
(docs/api.md, "Images").
"""

from __future__ import annotations

JsonObject = dict[str, object]

MINIMUMS: dict[str, dict[str, int]] = {
    "EmptyLatentImage": {"width": 16, "height": 16, "batch_size": 1},
    "EmptyImage": {"width": 1, "height": 1, "batch_size": 1},
}


def input_errors(class_type: str, kind: object, name: str, value: object) -> list[JsonObject]:
    """ComfyUI's errors for a widget value (not a link) of input ``name``, whose type is
    ``kind`` (a type name, or a combo's choices)."""
    if isinstance(kind, list) and value not in kind:
        extra = {"input_name": name, "input_config": [kind, {}], "received_value": value}
        return [
            _error(
                "value_not_in_list", "Value not in list", f"{name}: {value!r} not in {kind}", extra
            )
        ]
    minimum = MINIMUMS.get(class_type, {}).get(name)
    if minimum is None or isinstance(value, bool) or not isinstance(value, int | float):
        return []
    if value >= minimum:
        return []
    extra = {"input_name": name, "input_config": ["INT", {"min": minimum}], "received_value": value}
    return [
        _error(
            "value_smaller_than_min", f"Value {value} smaller than min of {minimum}", name, extra
        )
    ]


def _error(kind: str, message: str, details: str, extra: JsonObject) -> JsonObject:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}
