"""The typed settings model (no Qt): defaults, round trip, bad values, broken files."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from scubasteve.core.errors import InputError
from scubasteve.core.settings import Settings, load_settings, save_settings, settings_path


def test_settings_round_trip_through_the_config_folder():
    s = Settings(
        device="cpu", engine="classic", polygon_tolerance=0.5, shortcuts={"accept": "Space"}
    )
    s.recent_labels = ["dog", "cat"]
    path = save_settings(s)
    assert path == settings_path()
    loaded = load_settings()
    assert loaded == s
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"], "no temporary files left"


def test_bad_values_fall_back_to_defaults_and_are_reported(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {"device": "tpu", "polygon_tolerance": "fine", "proposals": 50, "future_key": 1}
        ),
        encoding="utf-8",
    )
    problems: list[str] = []
    s = load_settings(path, problems)
    assert (s.device, s.polygon_tolerance, s.proposals) == ("auto", 1.0, 10)
    assert len(problems) == 3 and any("'tpu'" in p for p in problems)
    save_settings(s, path)
    assert json.loads(path.read_text())["future_key"] == 1, "unknown keys survive a save"


def test_a_broken_settings_file_gives_defaults_and_is_left_alone(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{ not json", encoding="utf-8")
    problems: list[str] = []
    assert load_settings(path, problems) == Settings()
    assert problems and str(path) in problems[0]
    assert path.read_text() == "{ not json"


def test_a_save_that_fails_keeps_the_old_settings_file(tmp_path, monkeypatch):
    path = save_settings(Settings(engine="classic"), tmp_path / "settings.json")
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(InputError, match="cannot save settings: the disk is full") as info:
        save_settings(Settings(engine="deepmask"), path)
    assert info.value.path == path
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"], "no temporary files left"


def test_pixellib_min_score_defaults_to_pixellib_own_and_accepts_a_number() -> None:
    from scubasteve.core.settings import Settings, _check

    assert Settings().pixellib_min_score is None
    assert _check("pixellib_min_score", None, None) is None
    assert _check("pixellib_min_score", 0.3, None) == 0.3
    with pytest.raises(ValueError):
        _check("pixellib_min_score", 1.5, None)


def test_the_window_offers_every_registered_engine_but_the_baselines(tmp_path: Path) -> None:
    from scubasteve.core.settings import ENGINES
    from scubasteve.inference.engines import ENGINE_NAMES

    assert set(ENGINES) == set(ENGINE_NAMES) - {"box", "grabcut"}
    path = save_settings(Settings(engine="isnet"), tmp_path / "settings.json")
    problems: list[str] = []
    assert load_settings(path, problems).engine == "isnet" and problems == []
