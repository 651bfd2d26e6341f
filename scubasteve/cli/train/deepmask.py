"""`scubasteve train deepmask | sharpmask | from-project`: options and handlers.

The handlers turn the options into a typed job (`training/deepmask/jobs.py`) and run it here or
in a group of processes (`group.start_group_if_needed`); the training itself is in
`training/deepmask/` (`run`, `trainer`, `project`). PyTorch loads when a job runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from scubasteve.training.deepmask.jobs import LearnJob, TrainJob
    from scubasteve.training.deepmask.trainer import EpochResult, TrainOptions
    from scubasteve.training.progress import ProgressCallback

T = TypeVar("T")


def register(kinds: argparse._SubParsersAction) -> None:
    d = kinds.add_parser("deepmask", help="train or fine-tune the DeepMask proposal network")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", type=Path, help="COCO instances JSON (with --images)")
    src.add_argument("--labelme", type=Path, help="a folder of images with LabelMe JSON")
    d.add_argument("--images", type=Path, help="image folder of the COCO file")
    d.add_argument("--init", default=None, help="start from these weights (name or file)")
    d.add_argument("--name", default="deepmask-custom", help="name of the trained model")
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--lr", type=float, default=1e-3)
    d.add_argument("--device", default="auto")
    d.add_argument("--val-fraction", type=float, default=0.2)
    d.add_argument("--resume", action="store_true", help="continue an interrupted run")
    d.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, log)")
    d.add_argument(
        "--arch",
        choices=("resnet50", "tiny"),
        default="resnet50",
        help="network when starting from random weights: the published ResNet-50 DeepMask, or a "
        "tiny one for quick checks",
    )
    _sgd_options(d)
    _workers_option(d)
    d.set_defaults(handler=cmd_train)

    s = kinds.add_parser("sharpmask", help="train the SharpMask refinement on a frozen DeepMask")
    ssrc = s.add_mutually_exclusive_group(required=True)
    ssrc.add_argument("--coco", type=Path)
    ssrc.add_argument("--labelme", type=Path)
    s.add_argument("--images", type=Path)
    s.add_argument("--deepmask", required=True, help="the frozen DeepMask (name or file)")
    s.add_argument("--name", default="sharpmask-custom")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--device", default="auto")
    s.add_argument("--resume", action="store_true")
    s.add_argument("--out", type=Path, default=None)
    s.add_argument("--val-fraction", type=float, default=0.2)
    _sgd_options(s)
    _workers_option(s)
    s.set_defaults(handler=cmd_train_sharpmask)

    f = kinds.add_parser(
        "from-project",
        help="fine-tune IS-Net (when its weights are installed) or DeepMask on a project's accepted "
        "annotations; measured on held-out images before and after, installed only if not worse",
    )
    f.add_argument("folder", type=Path)
    f.add_argument(
        "--engine",
        choices=("auto", "isnet", "deepmask"),
        default="auto",
        help="which network learns: auto (IS-Net if installed, else DeepMask; or --init's kind)",
    )
    f.add_argument("--init", default=None, help="model to start from (default: the installed one)")
    f.add_argument(
        "--name", default=None, help="name of the new model (default: <engine>-<folder name>)"
    )
    f.add_argument("--epochs", type=int, default=5)
    f.add_argument("--holdout", type=float, default=0.2)
    f.add_argument("--device", default="auto")
    f.add_argument("--batch-size", type=int, default=16)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--limit", type=int, default=None, help="at most this many held-out objects")
    f.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    f.add_argument("--seed", type=int, default=0, help="seed of the split and the sampling")
    _workers_option(f)
    f.set_defaults(handler=cmd_from_project)


def _sgd_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--batches-per-epoch", type=int, default=None, help="default: each object about twice"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the sampling")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    p.add_argument(
        "--bf16",
        choices=("auto", "on", "off"),
        default="auto",
        help="bfloat16 autocast (auto: where the CPU/GPU runs it fast)",
    )
    p.add_argument(
        "--compare-limit",
        type=int,
        default=200,
        help="at the end, compare the model's proposals with the classic engine's on up to this "
        "many validation objects (recorded with the model; the ensemble uses it); 0 skips",
    )


def _workers_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-parallel processes (torch.distributed: gloo on CPU, NCCL on GPU); each takes "
        "1/N of every batch (docs/scale.md). Without --ray they run on this machine",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="train in Ray Train's workers (optional extra 'scale'): no address starts a local "
        "Ray; 'auto' or ray://host:10001 uses a running cluster (docs/scale.md)",
    )


def options_from(cls: type[T], args: argparse.Namespace, **given: Any) -> T:
    """The dataclass `cls` with each field not `given` taken from the option of the same name
    (where the command has one; the dataclass's default otherwise)."""
    names = {f.name for f in dataclasses.fields(cls)} - set(given)  # type: ignore[arg-type]
    return cls(**{n: getattr(args, n) for n in names if hasattr(args, n)}, **given)


def _options(args: argparse.Namespace, refine: bool = False) -> TrainOptions:
    from scubasteve.core.errors import InputError
    from scubasteve.training.deepmask.trainer import TrainOptions, bf16_choice

    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise InputError("--epochs and --batch-size must be at least 1 and --lr positive")
    bf16 = bf16_choice(getattr(args, "bf16", "auto"))
    return options_from(TrainOptions, args, refine=refine, bf16=bf16)


class PrintedOutput:
    """A job's report on the terminal: lines on stdout, tqdm bars on stderr (when it is one).
    Plain and stateless, so it travels to the processes of a group (`training.deepmask.jobs`)."""

    def say(self, line: str) -> None:
        print(line, flush=True)

    def progress(self) -> ProgressCallback | None:
        from scubasteve.cli.progress import tqdm_bars

        return tqdm_bars(mask="mask", score="score") if sys.stderr.isatty() else None

    def epoch(self, r: EpochResult) -> None:
        parts = [f"mask loss {r.mask_loss:.4f}"]
        if not math.isnan(r.score_loss):
            parts.append(f"score loss {r.score_loss:.4f}")
        if not math.isnan(r.val_iou):
            parts.append(f"validation mean IoU {r.val_iou:.3f}")
        parts += [f"{r.samples_per_s:.1f} samples/s", f"lr {r.lr:g}"]
        print(f"epoch {r.epoch}: " + ", ".join(parts), flush=True)


def _start(args: argparse.Namespace, job: TrainJob | LearnJob) -> int:
    """Run `job` here, or in every process of the group `--workers N` / `--ray` asks for."""
    from scubasteve.training.deepmask.group import GroupOptions, start_group_if_needed
    from scubasteve.training.deepmask.jobs import TrainWork

    work = TrainWork(job, PrintedOutput())
    group = GroupOptions(
        workers=getattr(args, "workers", None),
        ray=getattr(args, "ray", None),
        device=args.device,
        threads=getattr(args, "threads", None),
        name=args.name,
    )
    code = start_group_if_needed(group, work)
    return work() if code is None else code


def _train_job(args: argparse.Namespace, init: str | None, refine: bool) -> TrainJob:
    from scubasteve.training.deepmask.jobs import TrainJob

    return options_from(TrainJob, args, options=_options(args, refine), init=init)


def cmd_train(args: argparse.Namespace) -> int:
    """`scubasteve train deepmask`."""
    return _start(args, _train_job(args, args.init, refine=False))


def cmd_train_sharpmask(args: argparse.Namespace) -> int:
    """`scubasteve train sharpmask`: the refinement on a frozen DeepMask."""
    return _start(args, _train_job(args, args.deepmask, refine=True))


def cmd_from_project(args: argparse.Namespace) -> int:
    """`scubasteve train from-project FOLDER`."""
    from scubasteve.training.deepmask.jobs import LearnJob
    from scubasteve.training.project import learner_for, model_name_for

    folder = Path(args.folder)
    learner = learner_for(args.engine, args.init)
    name = args.name or model_name_for(folder, learner)
    if learner == "isnet":
        return _isnet_from_project(args, folder, name)
    job = options_from(LearnJob, args, folder=folder, name=name)
    return _start(args, job)


def _isnet_from_project(args: argparse.Namespace, folder: Path, name: str) -> int:
    """IS-Net learns from the folder (one process: `--workers`/`--ray` are DeepMask's)."""
    from scubasteve.cli.progress import tqdm_bars
    from scubasteve.core.errors import InputError
    from scubasteve.inference.device import resolve_device
    from scubasteve.training.project import learn_from_project

    if args.workers or args.ray is not None:
        raise InputError("--workers and --ray train DeepMask; add --engine deepmask to use them")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"IS-Net learns from the accepted annotations in {folder}", file=sys.stderr)
    report = learn_from_project(
        folder,
        engine="isnet",
        init=args.init,
        name=name,
        epochs=args.epochs,
        holdout=args.holdout,
        device=resolve_device(args.device).device,
        seed=args.seed,
        progress=tqdm_bars() if sys.stderr.isatty() else None,
    )
    print(report.table())
    print(report.verdict())
    return 0
