"""`scubasteve train deepmask | sharpmask | from-project`: options and handlers.

The training itself is in `training/deepmask/` (`run`, `trainer`, `project`); the
handlers check the options, call it and print. PyTorch loads inside the handlers.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scubasteve.training.deepmask.trainer import EpochResult, TrainOptions
    from scubasteve.training.progress import ProgressCallback


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
        "from-project", help="fine-tune DeepMask on a project's accepted annotations, report gain"
    )
    f.add_argument("folder", type=Path)
    f.add_argument("--init", default=None)
    f.add_argument("--name", default="deepmask-project")
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


def _device(name: str) -> str:
    from scubasteve.inference.device import resolve_device

    choice = resolve_device(name)
    print(f"device: {choice.describe()}")
    return choice.device


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _options(args: argparse.Namespace, refine: bool = False) -> TrainOptions:
    from scubasteve.core.errors import InputError
    from scubasteve.training.deepmask.trainer import TrainOptions, bf16_choice

    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise InputError("--epochs and --batch-size must be at least 1 and --lr positive")
    return TrainOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=getattr(args, "momentum", 0.9),
        weight_decay=getattr(args, "weight_decay", 5e-4),
        batches_per_epoch=getattr(args, "batches_per_epoch", None),
        seed=getattr(args, "seed", 0),
        refine=refine,
        bf16=bf16_choice(getattr(args, "bf16", "auto")),
    )


def _print_epoch(r: EpochResult) -> None:
    parts = [f"mask loss {r.mask_loss:.4f}"]
    if not math.isnan(r.score_loss):
        parts.append(f"score loss {r.score_loss:.4f}")
    if not math.isnan(r.val_iou):
        parts.append(f"validation mean IoU {r.val_iou:.3f}")
    parts += [f"{r.samples_per_s:.1f} samples/s", f"lr {r.lr:g}"]
    print(f"epoch {r.epoch}: " + ", ".join(parts), flush=True)


def _run(args: argparse.Namespace, refine: bool, init: Any, kind: str) -> int:
    from scubasteve.core.errors import InputError
    from scubasteve.training.deepmask.data import check_dataset, collect_instances, split_by_image
    from scubasteve.training.deepmask.group import is_worker, start_group_if_needed, trainer_class
    from scubasteve.training.deepmask.run import (
        default_run_dir,
        load_dataset,
        prepare_run_dir,
        register_result,
        starting_network,
        train,
    )

    code = start_group_if_needed(args, _run, refine, init, kind)  # --workers N, --ray
    if code is not None:
        return code
    _threads(getattr(args, "threads", None))
    data = load_dataset(args.coco, args.images, args.labelme)
    instances, summary = collect_instances(data.docs)
    check_dataset(instances, summary, data.where, need_images=2)
    print(f"data: {summary.describe()}")
    val_fraction = getattr(args, "val_fraction", 0.2)
    train_ids, val_ids = split_by_image(len(data.docs), val_fraction, getattr(args, "seed", 0))
    run_dir = Path(args.out) if args.out else default_run_dir(args.name)
    prepare_run_dir(run_dir, args.resume)
    device = _device(args.device)
    net, cfg, start = starting_network(
        init, sharpmask=refine, arch=getattr(args, "arch", "resnet50")
    )
    if refine and start.startswith("random weights"):
        raise InputError("SharpMask refines a trained DeepMask: give one with --deepmask")
    options = _options(args, refine)
    print(f"training {kind} from {start}; run folder {run_dir}")
    meta = {"dataset": data.where, "start": start}
    try:
        result = train(
            data.docs,
            train_ids,
            val_ids,
            instances=instances,
            net=net,
            config=cfg,
            options=options,
            run_dir=run_dir,
            device=device,
            resume=args.resume,
            progress=_bars() if sys.stderr.isatty() else None,
            on_epoch=_print_epoch,
            meta=meta,
            trainer_class=trainer_class(),
        )
    except KeyboardInterrupt:
        print(f"interrupted: continue with the same command plus --resume (run folder {run_dir})")
        return 130
    if is_worker():
        return 0
    limit = getattr(args, "compare_limit", 0)
    if limit and result.best is not None and val_ids:
        meta["heldout"] = _compare_with_classic(
            result.best, [data.docs[i] for i in val_ids], device, limit
        )
    path = register_result(args.name, result, meta)
    print(f"best validation mean IoU {result.best_iou:.3f}; installed as {args.name!r} ({path})")
    return 0


def _compare_with_classic(
    weights: Path, docs: list[Any], device: str, limit: int
) -> dict[str, float]:
    """Proposal quality of the trained weights and of the classic engine on the same objects."""
    from scubasteve.inference.deepmask import proposer_from_file
    from scubasteve.training.deepmask.quality import (
        classic_quality,
        evaluate_boxes,
        format_quality,
        heldout_record,
    )

    print(f"comparing with the classic engine on up to {limit} validation objects ...", flush=True)
    trained = evaluate_boxes(proposer_from_file(weights, device), docs, limit=limit)
    classic = classic_quality(docs, limit=limit)
    rows = [("trained", trained)] + ([("classic", classic)] if classic is not None else [])
    print(format_quality(rows))
    return heldout_record(trained, classic)


def _bars() -> ProgressCallback:
    from scubasteve.cli.progress import tqdm_bars

    return tqdm_bars(mask="mask", score="score")


def cmd_train(args: argparse.Namespace) -> int:
    """`scubasteve train deepmask`."""
    return _run(args, refine=False, init=args.init, kind="DeepMask")


def cmd_train_sharpmask(args: argparse.Namespace) -> int:
    """`scubasteve train sharpmask`: the refinement on a frozen DeepMask."""
    return _run(args, refine=True, init=args.deepmask, kind="the SharpMask refinement")


def cmd_from_project(args: argparse.Namespace) -> int:
    """`scubasteve train from-project FOLDER`."""
    from scubasteve.training.deepmask.group import start_group_if_needed
    from scubasteve.training.deepmask.project import learn_from_project

    code = start_group_if_needed(args, cmd_from_project)  # --workers N, --ray
    if code is not None:
        return code
    _threads(getattr(args, "threads", None))
    report = learn_from_project(
        Path(args.folder),
        init=args.init,
        name=args.name,
        epochs=args.epochs,
        holdout=args.holdout,
        device=_device(args.device),
        progress=_bars() if sys.stderr.isatty() else None,
        on_epoch=_print_epoch,
        batch_size=getattr(args, "batch_size", 16),
        lr=getattr(args, "lr", 1e-3),
        limit=getattr(args, "limit", None),
        seed=getattr(args, "seed", 0),
    )
    if report is None:  # another process of --workers N: rank 0 reports
        return 0
    print(report.table())
    print(report.verdict())
    return 0
