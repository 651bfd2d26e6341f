"""Atomic writes: an existing file is never left truncated, whatever fails."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from scubasteve.core import atomic
from scubasteve.core.errors import InputError
from scubasteve.io.json_files import read_json


def test_write_replaces_content_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic.atomic_write_json(target, {"x": 1})
    atomic.atomic_write_json(target, {"x": 2})
    assert read_json(target) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_disk_full_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.json"
    target.write_text('{"old": true}')

    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(InputError, match="disk is full") as info:
        atomic.atomic_write_json(target, {"new": True})
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert info.value.path == target
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions"
)
def test_read_only_folder_gives_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"read-only|permission"):
            atomic.atomic_write_text(folder / "a.json", "new")
        assert (folder / "a.json").read_text() == "{}"
    finally:
        folder.chmod(0o755)


def test_read_only_folder_gives_clear_error_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(InputError, match="read-only"):
        atomic.atomic_write_text(tmp_path / "a.json", "x")


def test_interrupted_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder not found"):
        atomic.atomic_write_text(tmp_path / "nope" / "a.json", "x")


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic.atomic_write_json(tmp_path / "a.json", {"x": float("nan")})
    assert not (tmp_path / "a.json").exists()
