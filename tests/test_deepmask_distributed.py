"""`train deepmask --workers 2`: two CPU processes (gloo) against one process on the same batch.

The exact part (the step of 2 processes on halves of a batch is that of one process on all of it)
is tests/test_deepmask_group_batchnorm.py. Here a whole run: the two runs cannot agree exactly,
because each process draws its own samples (and dropout masks), so the 2-process run sees other
samples than the 1-process run with the same seed. The bounds come from a measurement
(`scripts/bench_deepmask_ddp.py 0-4 1 2`, docs/scale.md): over 5 seeds, the final mask loss of
the 2-process run minus the 1-process run with the same seed was -0.53 +- 0.60 (mean +- sd) and
the validation IoU +0.031 +- 0.038; the bounds are three of those standard deviations. Both runs
are deterministic on one platform (one thread), so the test does not flicker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.deepmask_data import write_labelme_project

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 600  # two runs; the two-process one starts two more Pythons with torch


def _train(folder: Path, out: Path, workers: int, seed: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = ["train", "deepmask", "--labelme", str(folder), "--arch", "tiny", "--device", "cpu"]
    args += ["--batch-size", "8", "--batches-per-epoch", "6", "--epochs", "4", "--lr", "5e-3"]
    args += ["--seed", str(seed), "--compare-limit", "0", "--threads", "1", "--out", str(out)]
    args += ["--name", out.name, "--workers", str(workers)]
    done = subprocess.run(
        [sys.executable, "-m", "scubasteve", *args],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S / 2,  # each run
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"installed as '{out.name}'" in done.stdout
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(LIMIT_S)
def test_two_processes_train_like_one_within_the_measured_noise(tmp_path: Path) -> None:
    folder = write_labelme_project(tmp_path / "p", 6)
    one = _train(folder, tmp_path / "one", workers=1, seed=0)
    two = _train(folder, tmp_path / "two", workers=2, seed=0)

    assert [e["epoch"] for e in two] == [1, 2, 3, 4]  # one log, written by rank 0 only
    for run in (one, two):  # both learn
        assert run[-1]["mask_loss"] < run[0]["mask_loss"]
    for key, bound in (("mask_loss", 3 * 0.60), ("val_iou", 3 * 0.038)):
        assert abs(two[-1][key] - one[-1][key]) <= bound, (key, one[-1][key], two[-1][key])
    assert not list(tmp_path.glob("*/state.pt.tmp*"))


def _fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_more_cuda_workers_than_gpus_are_refused_before_any_process_starts(
    monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    # Two NCCL processes on one GPU fail at their first collective (or wait there): refuse first.
    import torch.multiprocessing as mp

    from scubasteve.core.errors import InputError
    from scubasteve.training.deepmask.distributed import launch
    from scubasteve.training.deepmask.group import GroupOptions

    spawned: list = []
    monkeypatch.setattr(mp, "spawn", lambda *a, **k: spawned.append(k["nprocs"]))
    _fake_gpus(monkeypatch, 1)
    group = GroupOptions(device=device)
    with pytest.raises(InputError, match=r"--workers 2 .* 1 GPU: use --workers 1"):
        launch(group, 2, lambda resume_in=None: 0)
    assert spawned == []
    launch(GroupOptions(device="cpu"), 2, lambda resume_in=None: 0)  # gloo needs no GPU
    launch(group, 1, lambda resume_in=None: 0)
    _fake_gpus(monkeypatch, 0)  # no GPU: the processes fall back to the CPU, nothing to refuse
    launch(group, 2, lambda resume_in=None: 0)
    assert spawned == [2, 1, 2]


def test_cuda_asked_on_a_machine_without_a_gpu_runs_the_group_with_gloo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The processes fall back to the CPU as `resolve_device` does (this divided by zero GPUs).
    import torch.distributed as dist

    from scubasteve.training.deepmask import distributed as D
    from scubasteve.training.deepmask.group import GroupOptions

    _fake_gpus(monkeypatch, 0)
    seen: list = []

    def work(resume_in: Path | None = None) -> int:
        seen.append((dist.get_backend(), dist.get_world_size()))
        return 0

    D._rank_main(0, 1, D._free_port(), GroupOptions(device="cuda", threads=1), work)
    assert seen == [("gloo", 1)]
    assert not dist.is_initialized()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_from_project_trains_in_two_processes_and_only_rank_0_reports(tmp_path: Path) -> None:
    import torch

    from scubasteve.core.paths import data_dir
    from scubasteve.inference.deepmask.checkpoint import save_weights
    from scubasteve.inference.deepmask.config import tiny_config
    from scubasteve.inference.deepmask.network import build_network

    folder = write_labelme_project(tmp_path / "p", 30)  # 20 objects to learn from
    cfg = tiny_config(trunk_width=8)
    torch.manual_seed(0)
    init = save_weights(tmp_path / "start.pt", build_network(cfg).state_dict(), cfg, {})
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = ["train", "from-project", str(folder), "--init", str(init), "--name", "proj"]
    args += ["--epochs", "2", "--holdout", "0.34", "--batch-size", "4", "--device", "cpu"]
    args += ["--threads", "1", "--workers", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "scubasteve", *args],
        cwd=tmp_path,
        env=env,  # the conftest's isolated SCUBASTEVE_DATA_DIR included
        capture_output=True,
        text=True,
        timeout=270,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("held-out: 10 images") == 1  # one report, by rank 0
    assert done.stdout.count("fine-tun") == 1  # one verdict
    runs = list((data_dir() / "runs").glob("proj-*"))
    assert len(runs) == 1  # the other process trained in a scratch folder
    log = [json.loads(line) for line in (runs[0] / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert (runs[0] / "last.pt").is_file()


def test_workers_below_one_are_refused() -> None:
    from scubasteve.core.errors import InputError
    from scubasteve.training.deepmask.group import GroupOptions, start_group_if_needed

    with pytest.raises(InputError, match="--workers must be at least 1"):
        start_group_if_needed(GroupOptions(workers=0), print)
    assert start_group_if_needed(GroupOptions(workers=1), print) is None  # one process


def test_a_training_job_is_plain_data_that_travels_to_the_group() -> None:
    # Issue 23, item 3: the launchers got the argparse namespace and the CLI's handler.
    import pickle

    from scubasteve.cli.train.deepmask import PrintedOutput
    from scubasteve.training.deepmask.group import GroupOptions
    from scubasteve.training.deepmask.jobs import TrainJob, TrainWork
    from scubasteve.training.deepmask.trainer import TrainOptions

    work = TrainWork(TrainJob("m", TrainOptions(epochs=2), labelme=Path("p")), PrintedOutput())
    again = pickle.loads(pickle.dumps((GroupOptions(workers=2, ray=""), work)))
    assert again[0] == GroupOptions(workers=2, ray="") and again[1].job == work.job


def test_the_training_options_become_a_typed_job() -> None:
    from scubasteve.cli import build_parser
    from scubasteve.cli.train.deepmask import _train_job, options_from
    from scubasteve.training.deepmask.jobs import LearnJob, TrainJob

    words = "train sharpmask --labelme p --deepmask dm --epochs 3 --seed 7 --bf16 off"
    args = build_parser().parse_args([*words.split(), "--threads", "2", "--out", "o"])
    job = _train_job(args, args.deepmask, refine=True)
    assert isinstance(job, TrainJob) and job.labelme == Path("p") and job.init == "dm"
    assert (job.options.epochs, job.options.seed, job.options.bf16) == (3, 7, False)
    assert job.options.refine and job.threads == 2 and job.out == Path("o")
    assert job.name == "sharpmask-custom" and job.arch == "resnet50"  # no --arch: the default
    args = build_parser().parse_args(["train", "from-project", "f", "--holdout", "0.3"])
    assert args.name is None and args.engine == "auto"  # the name follows the learner
    learn = options_from(LearnJob, args, folder=Path(args.folder), name="deepmask-f")
    assert learn == LearnJob(Path("f"), name="deepmask-f", holdout=0.3)
