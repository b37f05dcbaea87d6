"""The operations the gateway serves, by path. An endpoint is a parser (the body → its
``OperationFields``, 400 in the caller's format), a renderer (how a whole answer is told as
stream events in the caller's format, or None) and one line in ``OPERATIONS``; the edge serves
each path before the router (``app.build_stack``), through ``api/relay.OperationEndpoint``."""

from __future__ import annotations

from typing import Any

from lowart.api.anthropic import PASSED_HEADERS
from lowart.api.chat import chat_fields, messages_fields
from lowart.api.embeddings import embedding_fields
from lowart.api.images import image_fields
from lowart.formats.anthropic_events import message_events
from lowart.formats.ids import ANTHROPIC, EMBEDDINGS, IMAGES, OPENAI
from lowart.formats.openai import completion_chunks
from lowart.jobs.service import IMAGES as IMAGE_JOB
from lowart.model_entry import OperationKind
from lowart.pipeline.operation import Operation


def openai_events(body: dict[str, Any], wants_usage: bool, extra: dict[str, Any]) -> list[bytes]:
    return completion_chunks(body, wants_usage, extra)


def anthropic_events(body: dict[str, Any], wants_usage: bool, extra: dict[str, Any]) -> list[bytes]:
    return message_events(body, extra)  # a Messages stream always carries its usage


CHAT = Operation("chat", OPENAI, chat_fields, openai_events)
MESSAGES = Operation(
    "messages", ANTHROPIC, messages_fields, anthropic_events, headers=PASSED_HEADERS
)
IMAGE_GENERATION = Operation(
    "images", IMAGES, image_fields, None, job_kind=IMAGE_JOB, kind=OperationKind.IMAGES, tools=False
)
EMBEDDING = Operation(
    "embeddings", EMBEDDINGS, embedding_fields, None, kind=OperationKind.EMBEDDINGS, tools=False
)

OPERATIONS: tuple[tuple[str, Operation], ...] = (
    ("/v1/chat/completions", CHAT),
    ("/v1/messages", MESSAGES),
    ("/v1/images/generations", IMAGE_GENERATION),
    ("/v1/embeddings", EMBEDDING),
)
