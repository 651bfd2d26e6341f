"""`scubasteve train isnet`: fine-tune IS-Net on box crops of your objects (docs/isnet-training.md).

PyTorch and the engines are imported inside the handler, when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser(
        "isnet",
        help="fine-tune IS-Net on box crops of a COCO file or a LabelMe folder; measured on "
        "held-out images before and after, installed as a new model only if it helps",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", type=Path, help="COCO instances JSON (with --images)")
    src.add_argument("--labelme", type=Path, help="a folder of images with LabelMe JSON")
    p.add_argument("--images", type=Path, help="image folder of the COCO file")
    p.add_argument(
        "--base", default=None, help="start from these IS-Net weights (default: installed)"
    )
    p.add_argument("--name", default="isnet-custom", help="name of the fine-tuned model")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-5, help="Adam learning rate")
    p.add_argument("--input-size", type=int, default=384, help="training crop side (px)")
    p.add_argument(
        "--blend",
        type=float,
        default=0.5,
        help="share of the fine-tuned weights in the result, the rest the starting weights "
        "(0.5 keeps what the published network knows about objects unlike yours; 1: tuned only)",
    )
    p.add_argument(
        "--holdout",
        choices=("fraction", "odd", "even"),
        default="fraction",
        help="which images to hold out for the before/after measurement: a random --val-fraction, "
        "or those at odd or even positions (the benchmarks' split)",
    )
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, log)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.set_defaults(handler=cmd_train_isnet)


def cmd_train_isnet(args: argparse.Namespace) -> int:
    """`scubasteve train isnet`."""
    from scubasteve.cli.progress import tqdm_bars
    from scubasteve.core.errors import InputError
    from scubasteve.training.deepmask.run import default_run_dir, load_dataset
    from scubasteve.training.isnet.run import split_and_fine_tune
    from scubasteve.training.isnet.trainer import IsnetTrainOptions

    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0 or args.input_size < 32:
        raise InputError(
            "--epochs and --batch-size must be at least 1, --lr positive, --input-size >= 32"
        )
    if not 0.0 <= args.blend <= 1.0:
        raise InputError(f"--blend must lie between 0 and 1, got {args.blend}")
    if args.coco is not None and args.images is None:
        raise InputError("--coco needs --images (the folder of its images)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = load_dataset(args.coco, args.images, args.labelme)
    options = IsnetTrainOptions(
        input_size=args.input_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        blend=args.blend,
    )
    run_dir = args.out or default_run_dir(args.name)
    print(f"{len(data.docs)} images from {data.where}; run folder {run_dir}", file=sys.stderr)
    report = split_and_fine_tune(
        data.docs,
        base=args.base,
        run_dir=run_dir,
        name=args.name,
        options=options,
        holdout=args.holdout,
        fraction=args.val_fraction,
        device=args.device,
        resume=args.resume,
        progress=tqdm_bars() if sys.stderr.isatty() else None,
        meta={"data": data.where},
    )
    print(
        f"{report.split.how}: {report.train_objects} objects to train on, "
        f"{report.heldout_objects} held out"
    )
    if report.record is not None:
        for e in report.record.history:
            print(f"epoch {e.epoch}: loss {e.loss:.4f}, {e.samples / e.seconds:.2f} samples/s")
    for note in report.notes:
        print(note)
    print(report.verdict)
    if report.installed:
        print(f"installed as {report.installed!r}: scubasteve ... --weights {report.installed}")
    return 0
