"""User API keys: generation, hashing and the display prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "lw-"
DISPLAY_PREFIX_LEN = 7


def generate_key() -> str:
    """A new key: ``lw-`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 digest stored for a key (hex). A fast hash suits 256-bit random keys."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, safe to show."""
    return key[:DISPLAY_PREFIX_LEN]


def digests_match(expected: str, actual: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(expected.encode(), actual.encode())


def new_id(prefix: str) -> str:
    """An opaque random identifier such as ``key_3f9a…``."""
    return f"{prefix}_{secrets.token_hex(12)}"
