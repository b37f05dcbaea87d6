"""Encryption of stored secrets (vendor keys, MCP env) with AES-GCM under the master key."""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENC_PREFIX = "enc:"
_VERSION = "v1"
_NONCE = 12
CHECK_PLAINTEXT = "lowart-master-key-check"


class SecretDecryptError(Exception):
    """A stored value could not be decrypted under the current master key."""


def _derive(master_key: str, info: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lowart/v1", info=info)
    return hkdf.derive(master_key.encode("utf-8"))


def generate_master_key() -> str:
    """A new random master key (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


class SecretBox:
    """Encrypts and decrypts strings, binding each to a context (e.g. the row it lives in)."""

    def __init__(self, master_key: str) -> None:
        self._aead = AESGCM(_derive(master_key, b"secrets"))
        self._sign_key = _derive(master_key, b"signing")

    @property
    def signing_key(self) -> bytes:
        """A key derived for HMAC signatures (file URLs), distinct from the encryption key."""
        return self._sign_key

    def encrypt(self, plaintext: str, context: str) -> str:
        """``enc:v1:`` + base64(nonce + ciphertext), with ``context`` as associated data."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{ENC_PREFIX}{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, context: str) -> str:
        """The plaintext of an ``enc:`` value; any other value is a plain secret, used as is."""
        if not stored.startswith(ENC_PREFIX):
            return stored
        try:
            version, payload = stored[len(ENC_PREFIX) :].split(":", 1)
            if version != _VERSION:
                raise SecretDecryptError(f"unknown secret format {version!r}")
            raw = base64.urlsafe_b64decode(payload.encode())
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8"))
        except (ValueError, InvalidTag) as exc:
            raise SecretDecryptError(
                "a stored secret does not decrypt under this MASTER_KEY"
            ) from exc
        return plain.decode("utf-8")
