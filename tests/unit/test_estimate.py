"""Offline token counts for vendors that report no usage, whatever the length of the text."""

from __future__ import annotations

from lowart.usage.estimate import Tokenizer, admission_estimate


def test_short_text_counts_exactly() -> None:
    tokenizer = Tokenizer()
    assert tokenizer.count("") == 0
    assert tokenizer.count("word " * 1000) == 1001  # as o200k_base counts it


def test_text_too_long_for_one_encode_is_counted_in_pieces() -> None:
    tokenizer = Tokenizer()
    long = "word " * 400_000  # 2 M characters: one encode call refuses it
    per_chunk = tokenizer.count("word " * 1000) - 1
    counted = tokenizer.count(long)
    assert 400_000 <= counted <= 400_000 + 20  # a seam costs at most a token or two
    assert per_chunk == 1000
    assert counted <= admission_estimate(len(long.encode()))


def test_a_long_run_without_spaces_is_still_counted() -> None:
    tokenizer = Tokenizer()
    assert tokenizer.count("x" * 1_500_000) > 0
