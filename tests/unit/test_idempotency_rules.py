"""The pure rules of ``Idempotency-Key`` (docs/api.md): which keys are valid, which answers
are kept for replays and which free the key."""

from __future__ import annotations

import pytest

from lowart.api.idempotency import MAX_KEY_LENGTH, final, valid_key
from lowart.errors import InvalidRequest


@pytest.mark.parametrize("raw", [b"a", b"order 42:retry", b"~" * MAX_KEY_LENGTH, b'"uuid"'])
def test_printable_ascii_keys_up_to_the_limit_are_taken_as_sent(raw: bytes) -> None:
    assert valid_key(raw) == raw.decode()


@pytest.mark.parametrize(
    "raw", [b"", b"x" * (MAX_KEY_LENGTH + 1), b"caf\xc3\xa9", b"tab\there", b"nul\x00", b"\x7f"]
)
def test_other_keys_are_a_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as refused:
        valid_key(raw)
    assert refused.value.http_status == 400


@pytest.mark.parametrize("status", [200, 201, 202, 400, 403, 404, 413, 422])
def test_successes_and_client_errors_are_kept(status: int) -> None:
    assert final(status)


@pytest.mark.parametrize("status", [101, 304, 408, 409, 425, 429, 500, 502, 503, 504, 529])
def test_transient_refusals_and_server_errors_free_the_key(status: int) -> None:
    assert not final(status)
