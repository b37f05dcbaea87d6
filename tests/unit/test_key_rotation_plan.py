"""The choice of keys for ``lowart rotate-master-key``: where the new key may come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowart.errors import StartupError
from lowart.key_rotation import NEW_KEY_ENV, plan
from lowart.settings import Settings

OLD = "old-master-key-0123456789abcdefghijklmnop"
NEW = "new-master-key-0123456789abcdefghijklmnop"


def _settings(tmp_path: Path, master_key: str | None = OLD, db: str = "") -> Settings:
    url = db or f"sqlite:///{tmp_path}/lowart.db"
    return Settings().replace(database_url=url, master_key=master_key, lowart_workdir=tmp_path)


def test_the_new_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    rotation = plan(_settings(tmp_path), None, {NEW_KEY_ENV: NEW})
    assert (rotation.old_key, rotation.new_key, rotation.key_file) == (OLD, NEW, None)
    given = tmp_path / "new.key"
    given.write_text(f"  {NEW}\n")
    assert plan(_settings(tmp_path), given, {NEW_KEY_ENV: "ignored"}).new_key == NEW


def test_with_master_key_set_a_new_key_must_be_given(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=NEW_KEY_ENV):
        plan(_settings(tmp_path), None, {})


@pytest.mark.parametrize("new", [OLD, "short-key"])
def test_the_new_key_is_long_and_different(tmp_path: Path, new: str) -> None:
    with pytest.raises(StartupError, match=r"current one|at least 32"):
        plan(_settings(tmp_path), None, {NEW_KEY_ENV: new})


def test_an_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="cannot read"):
        plan(_settings(tmp_path), tmp_path / "absent.key", {})


def test_the_key_file_gets_a_generated_key_and_is_never_created(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="no master key to rotate"):
        plan(_settings(tmp_path, master_key=None), None, {})
    assert not (tmp_path / "lowart.key").exists()
    (tmp_path / "lowart.key").write_text(OLD + "\n")
    rotation = plan(_settings(tmp_path, master_key=None), None, {})
    assert rotation.old_key == OLD
    assert rotation.key_file == tmp_path / "lowart.key"
    assert len(rotation.new_key) >= 32 and rotation.new_key != OLD


def test_postgresql_needs_master_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, master_key=None, db="postgresql://postgres@127.0.0.1/x")
    with pytest.raises(StartupError, match="no master key"):
        plan(settings, None, {NEW_KEY_ENV: NEW})
