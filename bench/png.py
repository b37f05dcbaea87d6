"""A small RGB canvas written as PNG with the standard library (zlib), so the chart needs no
plotting package: rectangles, lines and 5x7 text at any integer scale."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from font5x7 import HEIGHT, WIDTH, glyph

Color = tuple[int, int, int]


class Canvas:
    """``width`` x ``height`` pixels, white to start with."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width = width
        self.height = height
        self._rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        """A filled rectangle, clipped to the canvas."""
        x0, x1 = max(0, x), min(self.width, x + w)
        if x1 <= x0:
            return
        run = bytes(color) * (x1 - x0)
        for row in range(max(0, y), min(self.height, y + h)):
            self._rows[row][x0 * 3 : x1 * 3] = run

    def hline(self, x: int, y: int, w: int, color: Color) -> None:
        self.rect(x, y, w, 1, color)

    def vline(self, x: int, y: int, h: int, color: Color) -> None:
        self.rect(x, y, 1, h, color)

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 2) -> int:
        """Draw ``text`` with its top-left corner at (x, y); returns the x after it."""
        for char in text:
            for col, bits in enumerate(glyph(char)):
                for row in range(HEIGHT):
                    if bits >> row & 1:
                        self.rect(x + col * scale, y + row * scale, scale, scale, color)
            x += (WIDTH + 1) * scale
        return x

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return len(text) * (WIDTH + 1) * scale - scale if text else 0

    def save(self, path: Path) -> None:
        """Write the canvas as an 8-bit RGB PNG."""

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        raw = b"".join(b"\x00" + bytes(row) for row in self._rows)  # filter 0 on each line
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )
