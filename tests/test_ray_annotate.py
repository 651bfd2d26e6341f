"""`scubasteve annotate --ray`: a real local Ray (2 CPUs, no dashboard) against the local command.

Each test has a hard time limit (pytest-timeout) so that a stuck Ray fails instead of hanging the
suite. The random-weights Mask R-CNN of the PixelLib tests keeps every image fast.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.maskrcnn_h5 import CLASSES, fake_h5, random_maskrcnn_h5
from helpers.ray_processes import processes_of_this_ray
from PIL import Image

from scubasteve.cli import main
from scubasteve.io.json_files import read_json

REPO = Path(__file__).resolve().parents[1]
RAY_LIMIT_S = 420  # one test, Ray start-up and TensorFlow in each actor included (loaded machine)


def _images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        pixels = rng.integers(0, 80, (96, 128, 3), dtype=np.uint8)
        pixels[20:70, 30:100] = (210, 90, 40)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


def _annotate(folder: Path, out: Path, *extra: str, model: Path | None = None) -> int:
    """The command on the random-weights model, or on `model` (a metadata-only file for tests that
    stop before any network runs)."""
    model = model or random_maskrcnn_h5()
    return main(
        ["annotate", str(folder), "--model", str(model), "--speed", "256", "--min-score", "0",
         "--out", str(out), *extra]
    )  # fmt: skip


def _fake_model(folder: Path) -> Path:
    return fake_h5(folder / "model.h5", num_classes=4, class_names=list(CLASSES))


def _normalised(path: Path) -> bytes:
    """The file's bytes with what differs between any two runs blanked: ids and the run date."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"id": "[0-9a-f]{32}"', '"id": ""', text)
    return re.sub(r'"date": "[^"]*"', '"date": ""', text).encode()


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    options = {
        "num_cpus": 2,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": str(REPO)}},
    }
    try:
        ray.init(**options)
    except Exception:  # Ray waits a fixed 30 s for its node to register; a busy CI may need more
        ray.shutdown()
        ray.init(**options)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of 4 images plus a broken one, and the local command's files for it."""
    folder = _images(tmp_path_factory.mktemp("images"), 4)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path_factory.mktemp("local")
    assert _annotate(folder, out) == 1  # the broken image fails
    return folder, out


@pytest.mark.slow
@pytest.mark.timeout(RAY_LIMIT_S)
def test_ray_writes_the_local_commands_files_and_reports_the_bad_image(
    ray_local,
    local_reference: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, local = local_reference
    capsys.readouterr()
    out = tmp_path_factory.mktemp("ray")  # as deep as `local`: the same relative imagePath
    assert _annotate(folder, out, "--ray", "--workers", "1") == 1
    printed = capsys.readouterr().out
    assert "pre-annotated 4 image(s)" in printed and "broken.png" in printed
    assert "Ray: 1 Mask R-CNN actor(s)" in printed
    names = sorted(p.name for p in local.glob("*.json"))
    assert names == [f"img{i}.json" for i in range(4)]
    assert sorted(p.name for p in out.glob("*.json")) == names
    for name in names:
        assert _normalised(out / name) == _normalised(local / name), name
        assert read_json(out / name)["shapes"]  # the random model finds something everywhere

    # A rerun finds everything done and touches nothing.
    before = {name: (out / name).read_bytes() for name in names}
    assert _annotate(folder, out, "--ray") == 1  # the broken image is tried again, and fails
    assert "skipped 4 already pre-annotated" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in names} == before


@pytest.mark.slow
@pytest.mark.timeout(RAY_LIMIT_S)
def test_a_worker_killed_mid_run_loses_only_its_images_and_a_rerun_finishes(
    ray_local, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    folder = _images(tmp_path / "images", 8)
    out = tmp_path / "ray"
    outcome: list[int] = []
    run = threading.Thread(target=lambda: outcome.append(_annotate(folder, out, "--ray")))
    run.start()
    deadline = time.monotonic() + RAY_LIMIT_S / 2
    while not list(out.glob("*.json")) and time.monotonic() < deadline and run.is_alive():
        time.sleep(0.05)
    killed = processes_of_this_ray("MapWorker")
    for p in killed:
        p.kill()
    run.join(RAY_LIMIT_S / 2)
    assert killed, "no Ray Data actor process was found to kill"
    assert not run.is_alive() and outcome
    first = sorted(p.name for p in out.glob("*.json"))
    assert 1 <= len(first) <= 8
    for name in first:  # whole files only
        assert read_json(out / name)["scubasteve_preannotation"]

    first_run = capsys.readouterr().out
    # Ray Data restarts the actor and retries its image, or the run stops and says what to do.
    assert outcome == [0] or "run the command again" in first_run
    assert _annotate(folder, out, "--ray") == 0
    printed = capsys.readouterr().out
    assert f"pre-annotated {8 - len(first)} image(s)" in printed
    assert sorted(p.name for p in out.glob("*.json")) == [f"img{i}.json" for i in range(8)]
    assert not list(out.glob(".*.tmp"))


def test_a_read_only_output_folder_is_refused_before_ray_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    import os

    from scubasteve.inference import preannotation

    folder = _images(tmp_path / "images", 1)
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:  # root ignores folder permissions: deny the way the OS would
        denied = PermissionError(13, "Permission denied")
        monkeypatch.setattr(
            preannotation.tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(denied)
        )
    out.chmod(0o555)
    try:
        assert _annotate(folder, out, "--ray", model=_fake_model(tmp_path)) == 2
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert "cannot write" in err and str(out) in err
    assert not list(out.iterdir())


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9"])
def test_an_address_that_does_not_answer_fails_in_seconds_naming_it(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    folder = _images(tmp_path / "images", 1)
    started = time.monotonic()
    assert _annotate(folder, tmp_path / "out", "--ray", address, model=_fake_model(tmp_path)) == 2
    assert time.monotonic() - started < 15
    assert address in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.json"))


def test_without_ray_the_command_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    folder = _images(tmp_path / "images", 1)
    assert _annotate(folder, tmp_path / "out", "--ray", model=_fake_model(tmp_path)) == 2
    assert "scubasteve[scale]" in capsys.readouterr().err
