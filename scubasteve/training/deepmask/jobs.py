"""The DeepMask training commands as typed jobs: what `train deepmask | sharpmask | from-project`
run, in one process or in every process of a group (`--workers N`, `--ray`).

A job is plain, frozen data, so it travels to the other processes; `TrainWork` pairs it with an
`Output` (the command line's presentation: lines, progress bars, epoch lines; picklable too) and is
the `group.GroupWork` the launchers run. The command line only turns its options into a job
(`cli/train/deepmask.py`); no process gets an argparse namespace or calls back into the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from scubasteve.core.errors import InputError
from scubasteve.training.deepmask.trainer import EpochResult, TrainOptions
from scubasteve.training.progress import ProgressCallback


class Output(Protocol):
    """Where a job's report goes (the command line prints; rank 0 only, others are silenced)."""

    def say(self, line: str) -> None: ...

    def progress(self) -> ProgressCallback | None:
        """The trainer's progress callback, made in the process that trains (None: none)."""
        ...

    def epoch(self, result: EpochResult) -> None: ...


@dataclass(frozen=True)
class TrainJob:
    """`train deepmask` (or `sharpmask`: `options.refine`, `init` the frozen DeepMask).

    Data: `coco` with `images`, or `labelme`. `init`: weights to start from (None: random `arch`
    weights). `out`: the run folder (None: the models' runs folder, by `name`). `compare_limit`:
    validation objects on which the result is compared with the classic engine (0: none).
    """

    name: str
    options: TrainOptions
    init: str | None = None
    coco: Path | None = None
    images: Path | None = None
    labelme: Path | None = None
    arch: str = "resnet50"
    device: str = "auto"
    val_fraction: float = 0.2
    resume: bool = False
    out: Path | None = None
    compare_limit: int = 200
    threads: int | None = None

    @property
    def kind(self) -> str:
        return "the SharpMask refinement" if self.options.refine else "DeepMask"


@dataclass(frozen=True)
class LearnJob:
    """`train from-project FOLDER`: fine-tune on a project's accepted annotations, report gain
    (the options of `learn.learn_from_project`)."""

    folder: Path
    init: str | None = None
    name: str = "deepmask-project"
    epochs: int = 5
    holdout: float = 0.2
    device: str = "auto"
    batch_size: int = 16
    lr: float = 1e-3
    limit: int | None = None
    seed: int = 0
    threads: int | None = None


@dataclass(frozen=True)
class TrainWork:
    """A job and its output: the `GroupWork` every process of a group runs."""

    job: TrainJob | LearnJob
    output: Output

    def __call__(self, resume_in: Path | None = None) -> int:
        if isinstance(self.job, LearnJob):  # a new run folder each time: nothing to resume
            return run_learn_job(self.job, self.output)
        return run_train_job(self.job, self.output, resume_in)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _device(name: str, output: Output) -> str:
    from scubasteve.inference.device import resolve_device

    choice = resolve_device(name)
    output.say(f"device: {choice.describe()}")
    return choice.device


def run_train_job(job: TrainJob, output: Output, resume_in: Path | None = None) -> int:
    """Train, compare with the classic engine and register the model (rank 0); the exit status.

    `resume_in`: continue the run in this folder (a restarted Ray group), as `--resume` would.
    """
    from scubasteve.training.deepmask.group import is_worker
    from scubasteve.training.deepmask.run import (
        default_run_dir,
        load_dataset,
        prepare_run_dir,
        register_result,
        split_dataset,
        starting_network,
        train,
    )

    if resume_in is not None:
        job = replace(job, resume=True, out=resume_in)
    _set_threads(job.threads)
    split = split_dataset(
        load_dataset(job.coco, job.images, job.labelme), job.val_fraction, job.options.seed
    )
    output.say(f"data: {split.summary.describe()}")
    run_dir = job.out or default_run_dir(job.name)
    prepare_run_dir(run_dir, job.resume)
    device = _device(job.device, output)
    refine = job.options.refine
    net, cfg, start = starting_network(job.init, sharpmask=refine, arch=job.arch)
    if refine and start.startswith("random weights"):
        raise InputError("SharpMask refines a trained DeepMask: give one with --deepmask")
    output.say(f"training {job.kind} from {start}; run folder {run_dir}")
    meta: dict[str, Any] = {"dataset": split.where, "start": start}
    try:
        result = train(
            split, net, cfg, job.options, run_dir, device, resume=job.resume,
            progress=output.progress(), on_epoch=output.epoch, meta=meta,
        )  # fmt: skip
    except KeyboardInterrupt:
        output.say(
            f"interrupted: continue with the same command plus --resume (run folder {run_dir})"
        )
        return 130
    if is_worker():
        return 0
    if job.compare_limit and result.best is not None and split.val_ids:
        meta["heldout"] = _compare_with_classic(
            result.best, split.val_docs, device, job.compare_limit, output
        )
    path = register_result(job.name, result, meta)
    output.say(
        f"best validation mean IoU {result.best_iou:.3f}; installed as {job.name!r} ({path})"
    )
    return 0


def _compare_with_classic(
    weights: Path, docs: list[Any], device: str, limit: int, output: Output
) -> dict[str, float]:
    """Proposal quality of the trained weights and of the classic engine on the same objects."""
    from scubasteve.evaluation.proposal_quality import (
        classic_quality,
        evaluate_boxes,
        format_quality,
        heldout_record,
    )
    from scubasteve.inference.deepmask import proposer_from_file

    output.say(f"comparing with the classic engine on up to {limit} validation objects ...")
    trained = evaluate_boxes(proposer_from_file(weights, device), docs, limit=limit)
    classic = classic_quality(docs, limit=limit)
    rows = [("trained", trained)] + ([("classic", classic)] if classic is not None else [])
    output.say(format_quality(rows))
    return heldout_record(trained, classic)


def run_learn_job(job: LearnJob, output: Output) -> int:
    """Learn from the project; rank 0 prints the before/after table and the verdict."""
    from scubasteve.training.deepmask.learn import learn_from_project

    _set_threads(job.threads)
    report = learn_from_project(
        job.folder, init=job.init, name=job.name, epochs=job.epochs, holdout=job.holdout,
        device=_device(job.device, output), progress=output.progress(), on_epoch=output.epoch,
        batch_size=job.batch_size, lr=job.lr, limit=job.limit, seed=job.seed,
    )  # fmt: skip
    if report is None:  # another process of the group: rank 0 reports
        return 0
    output.say(report.table())
    output.say(report.verdict())
    return 0
