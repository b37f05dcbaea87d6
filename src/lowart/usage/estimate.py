"""Token estimation: a cheap admission bound, and an offline tokenizer for missing usage."""

from __future__ import annotations

import threading
from typing import Any

_ENCODING = "o200k_base"
_PIECE = 200_000  # characters per encode call: the encoder refuses inputs near a million


def admission_estimate(prompt_bytes: int) -> int:
    """The upper bound used for quota reservations: UTF-8 bytes ÷ 3, never a tokenizer."""
    return -(-prompt_bytes // 3)


class Tokenizer:
    """An offline BPE tokenizer (bpe-openai ships its vocabularies), loaded on first use."""

    def __init__(self) -> None:
        self._encoding: Any = None
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        """Tokens in ``text``. Blocking: call it from a worker thread."""
        if not text:
            return 0
        with self._lock:
            if self._encoding is None:
                # Imported lazily: the vocabulary costs memory that most processes never need.
                import bpe_openai  # noqa: PLC0415 - lazy: its vocabulary costs memory

                self._encoding = bpe_openai.get_encoding(_ENCODING)
        total = 0
        for piece in _pieces(text):
            try:
                total += len(self._encoding.encode(piece))
            except ValueError:  # still refused: the admission bound, never nothing
                total += admission_estimate(len(piece.encode("utf-8", "replace")))
        return total


def _pieces(text: str) -> list[str]:
    """``text`` in pieces of at most ``_PIECE`` characters, cut at spaces where there are some
    (a cut inside a word can add a token at the seam, never lose one)."""
    pieces = []
    start = 0
    while len(text) - start > _PIECE:
        end = text.rfind(" ", start + _PIECE // 2, start + _PIECE)
        end = end if end > start else start + _PIECE
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces
