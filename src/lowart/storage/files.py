"""Stored files (job outputs): rows here, bytes under ``FILES_DIR``."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import reading
from lowart.storage.tables import files


@dataclass(frozen=True, slots=True)
class FileRow:
    file_id: str
    user_id: str
    job_id: str | None
    path: str
    content_type: str
    size: int
    created_at: float


class FileRepository:
    """Reads and writes ``files``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: FileRow) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                files.insert().values(
                    file_id=row.file_id,
                    user_id=row.user_id,
                    job_id=row.job_id,
                    path=row.path,
                    content_type=row.content_type,
                    size=row.size,
                    created_at=row.created_at,
                )
            )

    async def get(self, file_id: str) -> FileRow | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(sa.select(files).where(files.c.file_id == file_id))).first()
        return FileRow(**dict(row._mapping)) if row else None
