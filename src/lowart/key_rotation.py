"""Master-key rotation (docs/reliability.md, S3): every stored secret re-encrypted under a new key.

The new key comes from a file or from ``NEW_MASTER_KEY``, never from the command line (which
``ps`` shows). With SQLite's generated ``lowart.key`` (no ``MASTER_KEY`` set), a new key is
generated when none is given, and the file is replaced atomically: the new key is written to
``lowart.key.new`` first, the database is changed in one transaction, then the file is renamed
over ``lowart.key``. Secrets that fail to decrypt under the current key stop the rotation with
nothing changed. Afterwards the old key no longer starts the gateway.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lowart.errors import StartupError
from lowart.security.secretbox import SecretBox, SecretDecryptError, generate_master_key
from lowart.services import check_master_key, resolve_master_key
from lowart.settings import MIN_MASTER_KEY, Settings
from lowart.storage.audit import AuditEntry, AuditRepository
from lowart.storage.audit_states import MASK
from lowart.storage.audit_trail import CLI
from lowart.storage.engine import create_engine
from lowart.storage.meta import MetaRepository
from lowart.storage.migrate import migrate
from lowart.storage.sealed import MASTER_CHECK_KEY, Sealed, context_of, reseal_all

NEW_KEY_ENV = "NEW_MASTER_KEY"


@dataclass(frozen=True)
class Rotation:
    """The keys of one rotation, and the key file to replace (None when ``MASTER_KEY`` is set)."""

    old_key: str
    new_key: str
    key_file: Path | None


def _given_key(new_key_file: Path | None, env: Mapping[str, str]) -> str | None:
    if new_key_file is not None:
        try:
            return new_key_file.read_text().strip()
        except OSError as exc:
            raise StartupError(f"cannot read the new key from {new_key_file}: {exc}") from exc
    return env.get(NEW_KEY_ENV, "").strip() or None


def plan(settings: Settings, new_key_file: Path | None, env: Mapping[str, str]) -> Rotation:
    """The current key, the new one and the key file, or StartupError saying what is missing."""
    from_file = settings.security.master_key is None
    if from_file and not (settings.database.is_sqlite and settings.key_file.exists()):
        raise StartupError("no master key to rotate: set MASTER_KEY, or run where lowart.key is")
    old_key, _ = resolve_master_key(settings)
    new_key = _given_key(new_key_file, env)
    if new_key is None:
        if not from_file:
            raise StartupError(
                f"give the new key in {NEW_KEY_ENV} or with --new-key-file "
                "(MASTER_KEY is set, so the gateway cannot store a key it generates)"
            )
        new_key = generate_master_key()
    if len(new_key) < MIN_MASTER_KEY:
        raise StartupError(f"the new master key must be at least {MIN_MASTER_KEY} characters long")
    if new_key == old_key:
        raise StartupError("the new master key is the current one")
    return Rotation(old_key, new_key, settings.key_file if from_file else None)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, durably, replacing any earlier one."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _audited(counts: dict[str, int]) -> AuditEntry:
    """The audit row of a rotation: the key changed (both ``***``) and how much was re-sealed."""
    return AuditEntry(
        at=time.time(),
        actor=CLI.name,
        actor_key_id=None,
        action="master_key.rotate",
        target="master_key",
        changes={
            "master_key": {"from": MASK, "to": MASK},
            "resealed": {"from": None, "to": counts},
        },
        client_address=None,
        request_id=None,
    )


async def rotate(settings: Settings, rotation: Rotation) -> dict[str, int]:
    """Re-encrypt every stored secret in one transaction and replace the key file.

    Returns how many values each table held. Plain (hand-inserted) vendor keys are encrypted
    on the way. Raises StartupError, with nothing changed, if a secret does not decrypt.
    """
    old, new = SecretBox(rotation.old_key), SecretBox(rotation.new_key)

    def reseal(item: Sealed) -> str:
        context = context_of(item)
        try:
            plain = old.decrypt(item.value, context)
        except SecretDecryptError as exc:
            raise StartupError(
                f"{item.table}.{item.column} of {item.key!r} does not decrypt under the current "
                "master key; nothing was changed"
            ) from exc
        return new.encrypt(plain, context)

    staged = None
    if rotation.key_file is not None:
        staged = rotation.key_file.with_name(rotation.key_file.name + ".new")
        _write_private(staged, rotation.new_key + "\n")
    engine = create_engine(
        settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
    )
    try:
        await migrate(engine)
        # Proves the current key opens this database, and leaves a check value to re-seal, so
        # that the old key is refused afterwards even where no gateway had started yet.
        await check_master_key(MetaRepository(engine), old, generated=False)
        counts = await reseal_all(engine, reseal, {MASTER_CHECK_KEY})
        await AuditRepository(engine).add(_audited(counts))
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    finally:
        await engine.dispose()
    if staged is not None and rotation.key_file is not None:
        os.replace(staged, rotation.key_file)
        _sync_dir(rotation.key_file.parent)
    return counts
