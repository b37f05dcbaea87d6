"""Expiring signatures for file URLs a browser can open without an API key."""

from __future__ import annotations

import hashlib
import hmac


class UrlSigner:
    """HMAC-SHA256 over ``file_id`` and its expiry, under a key derived from the master key."""

    def __init__(self, key: bytes, ttl_s: float, public_base_url: str | None = None) -> None:
        self._key = key
        self._ttl = ttl_s
        self._base = (public_base_url or "").rstrip("/")

    def _sig(self, file_id: str, exp: int) -> str:
        return hmac.new(self._key, f"{file_id}.{exp}".encode(), hashlib.sha256).hexdigest()

    def sign(self, file_id: str, now: float) -> tuple[int, str]:
        """``(exp, sig)`` for a URL valid for the configured time."""
        exp = int(now + self._ttl)
        return exp, self._sig(file_id, exp)

    def url(self, file_id: str, now: float) -> str:
        """The URL handed out for a file: relative, or absolute under ``PUBLIC_BASE_URL``."""
        exp, sig = self.sign(file_id, now)
        return f"{self._base}/v1/files/{file_id}?exp={exp}&sig={sig}"

    def verify(self, file_id: str, exp: str | None, sig: str | None, now: float) -> bool:
        """A signature is good when it matches and has not expired."""
        if not exp or not sig or not exp.isdigit() or int(exp) < now:
            return False
        return hmac.compare_digest(self._sig(file_id, int(exp)), sig)
