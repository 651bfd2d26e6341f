"""The classic engine's helper process: same cuts as in-thread, and never a failure of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from scubasteve.inference.classic import gridsolve, offload


def _ready(helper: offload.Helper, timeout: float = 60.0) -> int:
    """Wait until calls run in the helper; returns the helper's process id."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = helper.call(os.getpid)
        if pid != os.getpid():
            return pid
        time.sleep(0.05)
    pytest.fail("the helper process did not become ready")


@pytest.fixture(autouse=True)
def _offload_on(monkeypatch):
    """The helper is opt-in (`SCUBASTEVE_OFFLOAD=1`); these tests are about it, so switch it on."""
    monkeypatch.setenv(offload.ENV_SWITCH, "1")


def test_the_helper_is_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv(offload.ENV_SWITCH)
    assert not offload.Helper().enabled
    assert offload.Helper().call(os.getpid) == os.getpid()  # runs in-thread


@pytest.fixture
def helper():
    h = offload.Helper()
    yield h
    h.close()


def _grid_problem(seed: int, h: int = 40, w: int = 50) -> tuple:
    rng = np.random.default_rng(seed)
    cost_fg = rng.random((h, w)) * 4.0
    cost_bg = rng.random((h, w)) * 4.0
    cost_fg[:, :5] = 1e9  # a hard background band
    w_right = rng.random((h, w)).astype(np.float32)
    w_down = rng.random((h, w)).astype(np.float32)
    w_right[:, -1] = 0.0
    w_down[-1, :] = 0.0
    return cost_fg, cost_bg, w_right, w_down, 2.0


def test_cuts_in_the_helper_equal_cuts_in_thread(helper):
    _ready(helper)
    for seed in range(5):
        problem = _grid_problem(seed)
        here = gridsolve.grid_cut(*problem)
        there = helper.call(gridsolve.grid_cut, *problem)
        assert there.dtype == bool and there.shape == here.shape
        assert np.array_equal(here, there)
        assert not there[:, :5].any()


def test_a_dead_helper_falls_back_and_is_replaced(helper):
    first = _ready(helper)
    helper._child.kill()
    problem = _grid_problem(7)
    # The call that finds the helper dead still answers (in-thread), and a new helper follows.
    assert np.array_equal(helper.call(gridsolve.grid_cut, *problem), gridsolve.grid_cut(*problem))
    second = _ready(helper)
    assert second != first


def test_an_error_in_the_helper_is_the_callers_error(helper):
    _ready(helper)
    with pytest.raises(ValueError):
        helper.call(int, "not a number")
    assert helper.call(os.getpid) != os.getpid()  # the helper survives its callers' errors


def test_a_hung_helper_is_dropped(helper, monkeypatch):
    pid = _ready(helper)
    monkeypatch.setattr(offload, "CALL_TIMEOUT_S", 0.2)
    t0 = time.perf_counter()
    assert helper.call(time.sleep, 0.3) is None  # timed out there, then slept here
    assert time.perf_counter() - t0 < 10
    assert helper.call(os.getpid) not in (pid, os.getpid())  # dropped, and a new one serves


def test_the_switch_keeps_calls_in_thread(helper, monkeypatch):
    monkeypatch.setenv(offload.ENV_SWITCH, "0")
    helper.warm()
    assert helper.call(os.getpid) == os.getpid()
    assert helper._child is None


def test_no_helper_after_too_many_starts(helper, monkeypatch):
    monkeypatch.setattr(offload, "MAX_STARTS", 0)
    assert helper.call(os.getpid) == os.getpid()
    assert helper._child is None


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    """The helper is no multiprocessing child, which would run the main script a second time."""
    out = tmp_path / "runs.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, time
            from scubasteve.inference.classic import offload
            with open({str(out)!r}, "a") as f:
                f.write("ran\\n")
            end = time.monotonic() + 60
            while offload.call(os.getpid) == os.getpid() and time.monotonic() < end:
                time.sleep(0.05)
            print(offload.call(os.getpid) != os.getpid())
            """
        )
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        offload.ENV_SWITCH: "1",
    }
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"  # the helper served
    assert out.read_text() == "ran\n"


def test_the_first_call_waits_for_the_starting_helper(helper):
    """A cut in-thread would freeze the window; the first call waits for the helper instead."""
    assert helper.call(os.getpid) != os.getpid()
