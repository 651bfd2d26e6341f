"""Handlers of `scubasteve train deepmask | sharpmask | from-project` (options in cli/train.py)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.training.deepmask.data import check_dataset, collect_instances, split_by_image
from scubasteve.training.deepmask.run import (
    default_run_dir,
    load_dataset,
    prepare_run_dir,
    register_result,
    starting_network,
    train,
)
from scubasteve.training.deepmask.trainer import EpochResult, TrainOptions
from scubasteve.training.progress import ProgressCallback, tqdm_bars


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


def bf16_choice(value: str) -> bool | None:
    return {"auto": None, "on": True, "off": False}[value]


def _print_epoch(r: EpochResult) -> None:
    parts = [f"mask loss {r.mask_loss:.4f}"]
    if not math.isnan(r.score_loss):
        parts.append(f"score loss {r.score_loss:.4f}")
    if not math.isnan(r.val_iou):
        parts.append(f"validation mean IoU {r.val_iou:.3f}")
    parts += [f"{r.samples_per_s:.1f} samples/s", f"lr {r.lr:g}"]
    print(f"epoch {r.epoch}: " + ", ".join(parts), flush=True)


def _run(args: argparse.Namespace, refine: bool, init: Any, kind: str) -> int:
    from scubasteve.training.deepmask.group import (
        is_worker,
        start_group_if_needed,
        trainer_class,
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
