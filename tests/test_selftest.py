"""`scubasteve --self-test`: its runner reports every step, and from source the whole test passes."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scubasteve import selftest
from scubasteve.selftest import Context, SelfTestFailure, Step, run_self_test

REPO = Path(__file__).resolve().parents[1]


def _ok(ctx: Context) -> str:
    return "fine"


def _broken(ctx: Context) -> str:
    raise SelfTestFailure("the widget is missing")


def _crashing(ctx: Context) -> str:
    return str(1 / 0)


def test_all_steps_passing_exits_zero_and_prints_each_step() -> None:
    out = io.StringIO()
    status = run_self_test([Step("first", _ok), Step("second", _ok)], out=out)
    text = out.getvalue()
    assert status == 0
    assert "first" in text and "second" in text
    assert "self-test passed: 2 steps" in text


def test_failed_step_exits_nonzero_names_the_step_and_still_runs_the_rest() -> None:
    out = io.StringIO()
    ran: list[str] = []

    def later(ctx: Context) -> str:
        ran.append("later")
        return "ran"

    status = run_self_test([Step("widget", _broken), Step("later", later)], out=out)
    text = out.getvalue()
    assert status == 1
    assert "FAIL" in text and "the widget is missing" in text
    assert "1 of 2 steps failed (widget)" in text
    assert ran == ["later"]


def test_unexpected_exception_is_reported_with_its_type() -> None:
    out = io.StringIO()
    assert run_self_test([Step("maths", _crashing)], out=out) == 1
    assert "ZeroDivisionError" in out.getvalue()


def test_report_file_gets_the_same_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "sub" / "report.txt"
    monkeypatch.setenv("SCUBASTEVE_SELF_TEST_REPORT", str(report))
    out = io.StringIO()
    run_self_test([Step("only", _ok)], out=out)
    assert report.read_text(encoding="utf-8") == out.getvalue()


def test_steps_run_with_user_folders_moved_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCUBASTEVE_CONFIG_DIR", "/users/own/config")
    seen: dict[str, str] = {}

    def look(ctx: Context) -> str:
        seen["config"] = os.environ["SCUBASTEVE_CONFIG_DIR"]
        return "looked"

    run_self_test([Step("look", look)], out=io.StringIO())
    assert seen["config"] != "/users/own/config"
    assert Path(seen["config"]).name == "config"
    assert os.environ["SCUBASTEVE_CONFIG_DIR"] == "/users/own/config"


def test_resources_step_loads_the_scene_with_a_mask_inside_the_box(tmp_path: Path) -> None:
    ctx = Context(workdir=tmp_path)
    selftest.check_resources(ctx)
    image, truth, box = ctx.scene()
    assert image.dtype == np.uint8 and image.shape == (*truth.shape, 3)
    ys, xs = np.nonzero(truth)
    x0, y0, x1, y1 = box
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1


def test_labelme_step_round_trips_the_true_mask(tmp_path: Path) -> None:
    ctx = Context(workdir=tmp_path)
    selftest.check_resources(ctx)
    detail = selftest.check_labelme(ctx)
    assert "IoU 1.000" in detail
    assert (tmp_path / "labelme" / "scene.json").is_file()


def test_paths_step_fails_when_models_folder_is_inside_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    ctx = Context(workdir=tmp_path, user_models_dir=tmp_path / "data" / "models")
    with pytest.raises(SelfTestFailure, match="inside the installation"):
        selftest.check_paths(ctx)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.gui
@pytest.mark.skipif(
    _missing("scubasteve.gui.app") or _missing("scubasteve.inference.engines"),
    reason="the GUI or the classic engine is not in this checkout yet",
)
def test_self_test_passes_from_source() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "scubasteve", "--self-test"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "self-test passed" in result.stdout


def test_library_warnings_are_listed_after_the_table_not_inside_it(capfd) -> None:  # type: ignore[no-untyped-def]
    import warnings

    def noisy(ctx: Context) -> str:
        warnings.warn("torch.jit.script is deprecated", FutureWarning, stacklevel=1)
        return "fine"

    out = io.StringIO()
    assert run_self_test([Step("noisy", noisy), Step("after", _ok)], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[1].strip().endswith("fine") and lines[2].strip().startswith("after")
    notes = lines.index("  messages from libraries (not failures):")
    assert notes == 3 and "FutureWarning: torch.jit.script is deprecated" in lines[4]
    assert "deprecated" not in capfd.readouterr().err


def test_isnet_step_runs_the_engine_on_a_random_network_it_builds(tmp_path: Path) -> None:
    ctx = Context(workdir=tmp_path)
    selftest.check_resources(ctx)
    detail = selftest.check_isnet(ctx)
    assert "channels / 16" in detail and "with the classic engine" in detail
    from scubasteve.weights.isnet_file import read_weights

    written = read_weights(tmp_path / "isnet-random.pt")  # in the workdir, never the models folder
    assert written.divisor == selftest.SELF_TEST_ISNET_DIVISOR
    assert "isnet" in [step.name for step in selftest.DEFAULT_STEPS]


def test_isnet_step_fails_when_the_engines_miss_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic

    monkeypatch.setattr(IsnetWithClassic, "propose", lambda self, box, k=10, **kw: [])
    ctx = Context(workdir=tmp_path)
    selftest.check_resources(ctx)
    with pytest.raises(SelfTestFailure, match="gave 0 proposals"):
        selftest.check_isnet(ctx)
