"""The options a fake OpenAI upstream reads from a requested model name (the list is
``openai_fake``'s docstring), and the error answers it gives."""

from __future__ import annotations

from dataclasses import dataclass

from lowart.formats.openai import error_body
from lowart.testing.asgi import Headers, option_number

_ERRORS: dict[int, tuple[str, str, str | None, str]] = {
    400: ("invalid_request_error", "invalid_value", "messages", "fake bad request"),
    401: ("invalid_request_error", "invalid_api_key", None, "fake invalid api key"),
    403: ("permission_error", "permission_denied", None, "fake permission denied"),
    404: ("invalid_request_error", "model_not_found", "model", "fake model not found"),
    429: ("requests", "rate_limit_exceeded", None, "fake rate limit exceeded"),
}


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the options in a model name ask the fake to do."""

    error: int | None = None
    slow_ms: int = 0
    chunk_delay_ms: int = 0
    cut: int | None = None
    tools: bool = False
    usage: bool = True
    reported: tuple[int, int] | None = None
    cached: int = 0
    echo_headers: bool = False
    held: bool = False
    redirect: int | None = None
    big_kib: int = 0
    chunked: bool = False
    azure: bool = False
    floats: bool = False
    reasoning: bool = False
    length: bool = False
    retry_after: int = 7


def parse_behaviour(model: str) -> Behaviour:
    """Read the ``:``-separated options of a model name; of a repeated option the last wins."""
    options = [option.partition("-") for option in model.split(":")]
    found = {name: argument for name, _, argument in options}
    error, cut = option_number(found.get("error")), option_number(found.get("cut"))
    redirect = option_number(found.get("redirect"))
    prompt, _, completion = found.get("usage", "").partition("-")
    reported_prompt, reported_completion = option_number(prompt), option_number(completion)
    reported = None
    if reported_prompt is not None and reported_completion is not None:
        reported = (reported_prompt, reported_completion)
    return Behaviour(
        error=error if error is not None and 400 <= error <= 599 else None,
        slow_ms=max(option_number(found.get("slow")) or 0, 0),
        held="held" in found,
        chunk_delay_ms=max(option_number(found.get("chunkdelay")) or 0, 0),
        cut=None if cut is None else max(cut, 0),
        tools="tools" in found,
        usage="nousage" not in found,
        reported=reported,
        cached=max(option_number(found.get("cached")) or 0, 0),
        echo_headers="echo_headers" in found,
        redirect=redirect if redirect is not None and 300 <= redirect <= 399 else None,
        big_kib=max(option_number(found.get("big")) or 0, 0),
        chunked="chunked" in found,
        azure="azure" in found,
        floats="floats" in found,
        reasoning="reasoning" in found,
        length="length" in found,
        retry_after=max(option_number(found.get("retryafter")) or 7, 0),
    )


def error_answer(status: int, retry_after: int = 7) -> tuple[bytes, Headers]:
    """The error body for a status, with ``Retry-After`` on a 429."""
    kind = "server_error" if status >= 500 else "fake_error"
    type_, code, param, message = _ERRORS.get(status, (kind, kind, None, f"fake error {status}"))
    headers = [(b"retry-after", b"%d" % retry_after)] if status == 429 else ()
    return error_body(message, type_, code, param), headers
