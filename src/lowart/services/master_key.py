"""The master key: where it comes from, and the check that it opens the database's secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lowart.errors import StartupError
from lowart.security.secretbox import (
    CHECK_PLAINTEXT,
    SecretBox,
    SecretDecryptError,
    generate_master_key,
)
from lowart.settings import Settings
from lowart.storage.meta import MetaRepository
from lowart.storage.sealed import MASTER_CHECK_CONTEXT, MASTER_CHECK_KEY


def resolve_master_key(settings: Settings) -> tuple[str, bool]:
    """The master key, from ``MASTER_KEY`` or (SQLite) ``lowart.key``. True if generated now."""
    if settings.security.master_key:
        return settings.security.master_key, False
    if not settings.database.is_sqlite:
        raise StartupError("MASTER_KEY must be set when DATABASE_URL is PostgreSQL")
    path = settings.key_file
    if path.exists():
        return read_key_file(path), False
    key = generate_master_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, True


def read_key_file(path: Path) -> str:
    """The master key in ``lowart.key``."""
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise StartupError(f"cannot read {path}: {exc.strerror}") from exc
    if len(key) < 32:
        raise StartupError(f"{path} holds no usable master key (32+ characters expected)")
    return key


async def opens_secrets(meta: MetaRepository, box: SecretBox) -> bool | None:
    """Whether this master key opens the database's check value (None: none is stored yet, so
    the database holds no secret). Reads only."""
    stored = await meta.get(MASTER_CHECK_KEY)
    if stored is None:
        return None
    try:
        return box.decrypt(stored, MASTER_CHECK_CONTEXT) == CHECK_PLAINTEXT
    except SecretDecryptError:
        return False


async def check_master_key(meta: MetaRepository, box: SecretBox, generated: bool) -> None:
    """Refuse to start when the database's secrets were sealed under another master key."""
    ok = await opens_secrets(meta, box)
    if ok is None:
        sealed = box.encrypt(CHECK_PLAINTEXT, MASTER_CHECK_CONTEXT)
        await meta.put_if_absent(MASTER_CHECK_KEY, sealed)
        return
    if not ok:
        hint = (
            (
                " (lowart.key was missing, so a new key was generated: restore the old file "
                "or set MASTER_KEY)"
            )
            if generated
            else ""
        )
        raise StartupError(
            "The database holds secrets encrypted under a different master key; "
            f"refusing to start with this MASTER_KEY{hint}."
        )
