"""Files' bytes under ``FILES_DIR``, written off the event loop, with their rows."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from lowart.storage.files import FileRepository, FileRow

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
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
        await asyncio.to_thread(_write, self._root / relative, data)
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
