"""``GET /v1/files/{file_id}``: the owner's key, or a URL the gateway signed; else 404."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lowart.api.jobs import valid_id
from lowart.api.middleware import PRINCIPAL_KEY
from lowart.api.routing import route
from lowart.errors import NotFound
from lowart.principal import Principal
from lowart.security.signing import UrlSigner
from lowart.storage.files import FileRow
from lowart.storage.filestore import FileStore


class FileRoutes:
    """Serves stored files to their owner, or to whoever holds a valid signed URL."""

    def __init__(self, store: FileStore, signer: UrlSigner) -> None:
        self._store = store
        self._signer = signer

    def _allowed(self, request: Request, row: FileRow) -> bool:
        principal = request.scope.get(PRINCIPAL_KEY)
        if isinstance(principal, Principal):
            return principal.user_id == row.user_id
        q = request.query_params
        return self._signer.verify(row.file_id, q.get("exp"), q.get("sig"), time.time())

    async def get(self, request: Request) -> Response:
        file_id = str(request.path_params["file_id"])
        row = await self._store.get(file_id) if valid_id(file_id) else None
        if row is None or not self._allowed(request, row):
            raise NotFound(f"No file '{file_id[:64]}'.")
        return Response(
            await self._store.read(row),
            media_type=row.content_type,
            headers={"cache-control": "private, max-age=3600", "x-content-type-options": "nosniff"},
        )

    def routes(self) -> list[Route]:
        return [route("/v1/files/{file_id}", GET=self.get)]
