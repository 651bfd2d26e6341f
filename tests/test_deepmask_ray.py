"""`train deepmask --ray`: the data-parallel trainer in Ray Train's workers, on a real local Ray.

Ray is started by the test (2 CPUs, no dashboard) and each test has a hard time limit
(pytest-timeout), so that a stuck Ray fails instead of hanging the suite. The workers get the
test's own data folder (where rank 0 registers the model) through Ray's runtime environment.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers.deepmask_data import write_labelme_project
from helpers.ray_processes import processes_of_this_ray

from scubasteve.cli import main

REPO = Path(__file__).resolve().parents[1]
RAY_LIMIT_S = 480  # one test: Ray start-up, two workers importing torch, a restart, 4 epochs


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.train")
    data = tmp_path_factory.mktemp("ray-data")
    options = {
        "num_cpus": 2,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {
            "env_vars": {
                "PYTHONPATH": str(REPO),
                "SCUBASTEVE_DATA_DIR": str(data),
                "OMP_NUM_THREADS": "1",
            }
        },
    }
    try:
        ray.init(**options)
    except Exception:  # Ray waits a fixed 30 s for its node to register; a busy CI may need more
        ray.shutdown()
        ray.init(**options)
    yield data
    ray.shutdown()


def _train(folder: Path, out: Path, *extra: str) -> int:
    args = ["train", "deepmask", "--labelme", str(folder), "--arch", "tiny", "--device", "cpu"]
    args += ["--batch-size", "8", "--batches-per-epoch", "6", "--epochs", "4", "--lr", "5e-3"]
    args += ["--compare-limit", "0", "--threads", "1", "--out", str(out), "--name", out.name]
    return main([*args, "--ray", "--workers", "2", *extra])


def _epochs(out: Path) -> list[int]:
    log = out / "log.jsonl"
    lines = log.read_text().splitlines() if log.is_file() else []
    return [json.loads(line)["epoch"] for line in lines]


@pytest.mark.slow
@pytest.mark.timeout(RAY_LIMIT_S)
def test_a_killed_worker_is_replaced_and_the_run_continues_from_its_last_epoch(
    ray_local: Path, tmp_path: Path
) -> None:
    folder = write_labelme_project(tmp_path / "p", 6)
    out = tmp_path / "ray-run"
    outcome: list[int] = []
    run = threading.Thread(target=lambda: outcome.append(_train(folder, out)))
    run.start()
    deadline = time.monotonic() + RAY_LIMIT_S / 2
    while not _epochs(out) and time.monotonic() < deadline and run.is_alive():
        time.sleep(0.1)
    assert run.is_alive() and len(_epochs(out)) < 4, "the run ended before a worker could be killed"
    workers = processes_of_this_ray("RayTrainWorker")
    assert len(workers) == 2, workers
    workers[-1].kill()
    run.join(RAY_LIMIT_S / 2)
    assert not run.is_alive()
    assert outcome == [0]  # Ray Train restarted the group; without the restart the run fails
    assert _epochs(out) == [1, 2, 3, 4]  # each epoch once: the new group resumed from state.pt
    assert {"state.pt", "last.pt", "best.pt"} <= {p.name for p in out.iterdir()}
    assert list(ray_local.rglob(f"{out.name}*"))  # rank 0 registered the model


@pytest.mark.slow
@pytest.mark.timeout(RAY_LIMIT_S)
def test_a_bad_input_is_reported_once_not_retried(
    ray_local: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_labelme_project(tmp_path / "p", 3, annotate=False)
    started = time.monotonic()
    sigint = signal.getsignal(signal.SIGINT)
    assert _train(folder, tmp_path / "bad") == 2
    assert "the dataset has no annotated images" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is sigint  # Ray Train's own Ctrl+C handler is gone
    print(f"bad input reported after {time.monotonic() - started:.1f} s")


def test_without_ray_the_training_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    folder = write_labelme_project(tmp_path / "p", 2)
    assert _train(folder, tmp_path / "run") == 2
    assert "scubasteve[scale]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_address_that_does_not_answer_fails_in_seconds_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    folder = write_labelme_project(tmp_path / "p", 2)
    started = time.monotonic()
    assert _train(folder, tmp_path / "run", "--ray", "127.0.0.1:9") == 2
    assert time.monotonic() - started < 15
    assert "127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
