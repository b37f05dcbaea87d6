"""Files' bytes under ``FILES_DIR``, written and deleted off the event loop, with their rows."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lowart.storage.files import FileRepository, FileRow

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}


PRIVATE_DIR = 0o700  # generated images are their users' own: no other account reads them
PRIVATE_FILE = 0o600


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # already gone: what was wanted
            path.unlink()


def _write(root: Path, path: Path, data: bytes) -> None:
    root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)  # an existing root keeps its mode
    path.parent.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)  # a reader never sees half a file


class FileStore:
    """Saves and opens stored files; paths come from ids the gateway made, never from users."""

    def __init__(self, root: Path, repo: FileRepository) -> None:
        self._root = root
        self._repo = repo

    async def save(
        self,
        *,
        file_id: str,
        user_id: str,
        job_id: str | None,
        data: bytes,
        content_type: str,
        now: float,
    ) -> FileRow:
        relative = f"{file_id[-2:]}/{file_id}{_EXTENSIONS.get(content_type, '')}"
        await asyncio.to_thread(_write, self._root, self._root / relative, data)
        row = FileRow(
            file_id=file_id,
            user_id=user_id,
            job_id=job_id,
            path=relative,
            content_type=content_type,
            size=len(data),
            created_at=now,
        )
        await self._repo.add(row)
        return row

    async def get(self, file_id: str) -> FileRow | None:
        return await self._repo.get(file_id)

    async def read(self, row: FileRow) -> bytes:
        return await asyncio.to_thread((self._root / row.path).read_bytes)

    async def delete_blobs(self, rows: Sequence[Sequence[Any]]) -> None:
        """Delete the bytes of deleted rows (each row: its ``path``), off the event loop."""
        paths = [self._root / str(row[0]) for row in rows]
        await asyncio.to_thread(_unlink, paths)
