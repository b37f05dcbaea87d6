"""The examples of docs/transforms.md, "Examples", read from the page itself and run through
both SDKs, whole and streamed, against the fake OpenAI upstream (an Anthropic caller's request
is translated after the script saw it in the caller's format)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway

DOC = Path(__file__).resolve().parents[2] / "docs" / "transforms.md"


def examples() -> dict[str, str]:
    """Each example's title and script, as the page shows them."""
    section = DOC.read_text().split("## Examples", 1)[1]
    found = re.findall(r"^### (.+?)\n.*?```python\n(.*?)```", section, re.S | re.M)
    return dict(found)


EXAMPLES = examples()
FLAGS = {"Add a notice to answers": {"on_request": False, "on_response": True, "on_chunk": True}}


def ask(gw: Gateway, key: str, fmt: str, stream: bool, text: str, **extra: Any) -> str:
    """The answer's text, as the caller's SDK assembles it."""
    messages = [{"role": "user", "content": text}]
    if fmt == "openai":
        client = gw.openai(key)
        if not stream:
            answer = client.chat.completions.create(model="ex", messages=messages, **extra)
            return answer.choices[0].message.content or ""
        chunks = client.chat.completions.create(model="ex", messages=messages, stream=True, **extra)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    anthropic = gw.anthropic(key)
    extra = {"max_tokens": 100, **{k: v for k, v in extra.items() if k != "user"}}
    if not stream:
        message = anthropic.messages.create(model="ex", messages=messages, **extra)
    else:
        with anthropic.messages.stream(model="ex", messages=messages, **extra) as events:
            message = events.get_final_message()
    return "".join(block.text for block in message.content if block.type == "text")


def _upstream(fake: FakeOpenAI) -> dict[str, Any]:
    return dict(fake.calls[-1]["body"])


def system_prompt(gw: Gateway, fake: FakeOpenAI, key: str, fmt: str, stream: bool) -> None:
    assert ask(gw, key, fmt, stream, "hi") == "Hello from fake: hi"
    first = _upstream(fake)["messages"][0]
    assert first["role"] == "system"
    assert "support assistant of Example Corp" in str(first["content"])


def drop_fields(gw: Gateway, fake: FakeOpenAI, key: str, fmt: str, stream: bool) -> None:
    extra = {"user": "u-42"} if fmt == "openai" else {"metadata": {"user_id": "u-42"}}
    assert ask(gw, key, fmt, stream, "hi", **extra) == "Hello from fake: hi"
    sent = _upstream(fake)
    assert "user" not in sent and "metadata" not in sent


def clamp(gw: Gateway, fake: FakeOpenAI, key: str, fmt: str, stream: bool) -> None:
    ask(gw, key, fmt, stream, "hi", max_tokens=500)
    sent = _upstream(fake)
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 64


def mask(gw: Gateway, fake: FakeOpenAI, key: str, fmt: str, stream: bool) -> None:
    text = ask(gw, key, fmt, stream, "mail jane.doe@example.com or a@b today")
    assert text == "Hello from fake: mail [email] or a@b today"


def notice(gw: Gateway, fake: FakeOpenAI, key: str, fmt: str, stream: bool) -> None:
    assert ask(gw, key, fmt, stream, "hi") == "[AI-generated] Hello from fake: hi"


def route(gw: Gateway, fake: FakeOpenAI, key: str, fmt: str, stream: bool) -> None:
    assert ask(gw, key, fmt, stream, "short") == "Hello from fake: short"
    assert fake.calls[-1]["model"] == "small:ok"
    ask(gw, key, fmt, stream, "long " * 60)
    assert fake.calls[-1]["model"] == "ok"


Check = Callable[[Gateway, FakeOpenAI, str, str, bool], None]
CHECKS: dict[str, Check] = {
    "Add a system prompt": system_prompt,
    "Drop fields an upstream rejects": drop_fields,
    "Clamp max_tokens": clamp,
    "Mask e-mail addresses in prompts": mask,
    "Add a notice to answers": notice,
    "Send short prompts to a smaller model": route,
}


def test_every_example_has_a_check() -> None:
    assert set(EXAMPLES) == set(CHECKS)


@pytest.mark.parametrize("title", list(CHECKS))
def test_example_through_both_sdks(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str], title: str
) -> None:
    gw = make_gateway()
    fake, base = fake_openai
    for model_id, upstream in [("ex", "ok"), ("small-model", "small:ok")]:
        gw.add_model(model_id, "OpenAI", base_url=base, api_key="sk-v", upstream_model=upstream)
    body = {"model_id": "ex", "source": EXAMPLES[title], **FLAGS.get(title, {})}
    assert gw.admin("POST", "/admin/transforms", json=body).status_code == 201
    key = gw.create_user()
    for fmt in ("openai", "anthropic"):
        for stream in (False, True):
            CHECKS[title](gw, fake, key, fmt, stream)
