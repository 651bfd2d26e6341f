"""`scubasteve bench ...`: measurements that print tables (never pass/fail)."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure proposal quality, speed and the annotator loop")
    kinds = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    p = kinds.add_parser(
        "proposals", help="mask proposals from GT boxes: IoU and latency per engine"
    )
    _sample_options(p)
    p.add_argument("--k", type=int, default=10, help="proposals per box")
    p.add_argument("--out", type=Path, default=None, help="write per-instance proposals (RLE) here")
    p.set_defaults(handler=lazy("scubasteve.bench.proposals:run"))

    c = kinds.add_parser(
        "clicks",
        help="interactive protocol: clicks at the largest error until IoU 0.90 (NoC, IoU per click)",
    )
    _sample_options(c)
    c.add_argument("--max-clicks", type=int, default=20, help="clicks per object at most")
    c.add_argument(
        "--no-box",
        action="store_true",
        help="start from one positive click at the object's centre instead of the box",
    )
    c.add_argument(
        "--keep",
        action="append",
        choices=("best", "top"),
        help="which proposal the user keeps each round: best (by IoU) or top (ranked first); "
        "default both",
    )
    c.add_argument("--jobs", type=int, default=1, help="worker processes (images are split)")
    c.add_argument("--out", type=Path, default=None, help="write every object's IoU per click here")
    c.set_defaults(handler=lazy("scubasteve.bench.clicks:run"))

    a = kinds.add_parser("annotator", help="play a simulated annotator in the real window")
    a.add_argument("--coco", type=Path, required=True)
    a.add_argument("--images", type=Path, required=True)
    a.add_argument("--limit", type=int, default=None, help="at most this many objects")
    a.add_argument(
        "--max-clicks", type=int, default=10, help="corrective clicks per object, at most"
    )
    a.add_argument(
        "--target-iou",
        type=float,
        default=0.90,
        help="click on until the kept proposal reaches this IoU; objects below it are finished "
        "by hand (vertex edits) in the 'to target' estimate",
    )
    a.add_argument("--engine", default="ensemble", help="engine the window uses")
    a.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    a.add_argument("--out", type=Path, default=None, help="write the per-object log (JSON) here")
    a.set_defaults(handler=lazy("scubasteve.bench.annotator:run"))

    d = kinds.add_parser(
        "deepmask-precision", help="DeepMask in bfloat16 against float32 on the same weights"
    )
    d.add_argument("--coco", type=Path, required=True)
    d.add_argument("--images", type=Path, required=True)
    d.add_argument("--weights", default=None, help="a name or file (default: random weights)")
    d.add_argument("--random", choices=("resnet50", "tiny"), default="resnet50")
    d.add_argument("--seed", type=int, default=0, help="of the random weights")
    d.add_argument("--limit", type=int, default=40, help="at most this many objects")
    d.add_argument("--max-side", type=int, default=640, help="downscale longer image sides to this")
    d.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    d.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    d.set_defaults(handler=lazy("scubasteve.bench.deepmask_precision:run"))

    w = kinds.add_parser(
        "deepmask-whole-image", help="DeepMask whole-image mode: time and peak memory"
    )
    w.add_argument(
        "--size",
        type=lambda t: tuple(int(v) for v in t.lower().split("x")),
        default=(1920, 1080),
        help="WIDTHxHEIGHT of the synthetic image (default 1920x1080)",
    )
    w.add_argument("--tiny", action="store_true", help="the tiny test network instead")
    w.add_argument("--sharpmask", action="store_true", help="with the SharpMask refinement")
    w.add_argument("--max-canvas-pixels", type=int, default=1_500_000, help="per trunk pass")
    w.add_argument("--bf16", choices=("auto", "on", "off"), default="off")
    w.add_argument("--k", type=int, default=100, help="proposals to return")
    w.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    w.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    w.set_defaults(handler=lazy("scubasteve.bench.deepmask_whole_image:run"))

    t = kinds.add_parser("training", help="DeepMask training throughput and quality on a split")
    t.add_argument("--coco", type=Path, required=True)
    t.add_argument("--images", type=Path, required=True)
    t.add_argument("--epochs", type=int, default=5, help="0: measure the throughput only")
    t.add_argument(
        "--evaluate",
        default=None,
        metavar="WEIGHTS",
        help="only score these DeepMask weights (name or file) on the validation split",
    )
    t.add_argument("--device", default="auto")
    t.add_argument("--val-fraction", type=float, default=0.2)
    t.add_argument("--limit", type=int, default=None, help="at most this many validation objects")
    t.add_argument("--out", type=Path, default=None, help="run folder")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batches-per-epoch", type=int, default=None)
    t.add_argument("--throughput-steps", type=int, default=4, help="timed batches (0: skip)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument(
        "--bf16", choices=("auto", "on", "off"), default="auto", help="bfloat16 autocast"
    )
    t.set_defaults(handler=lazy("scubasteve.bench.training:run"))

    s = kinds.add_parser("startup", help="time `scubasteve --help` and the window's first paint")
    s.add_argument("--repeat", type=int, default=5)
    s.set_defaults(handler=lazy("scubasteve.bench.startup:run"))

    for name, module, text in (
        (
            "pixellib-refine",
            "pixellib_refine",
            "how proposal refinement changes Mask R-CNN mask IoU",
        ),
        ("pixellib-speed", "pixellib_speed", "Mask R-CNN seconds per image at each speed preset"),
    ):
        f = kinds.add_parser(name, help=text, add_help=False, prefix_chars="\0")
        f.add_argument("args", nargs=argparse.REMAINDER, help="options of the benchmark (--help)")
        f.set_defaults(handler=_forward(f"scubasteve.bench.{module}:main"))


def _sample_options(p: argparse.ArgumentParser) -> None:
    """The options that choose the objects and engines (shared by `proposals` and `clicks`)."""
    p.add_argument("--coco", type=Path, help="COCO instances JSON with GT masks")
    p.add_argument("--images", type=Path, help="folder of the COCO file's images")
    p.add_argument(
        "--labelme",
        type=Path,
        help="instead of --coco/--images: a folder of LabelMe JSON files (polygons are the truth)",
    )
    p.add_argument(
        "--engine",
        action="append",
        help="engine to run (classic, deepmask, sam2, ensemble, box, grabcut); repeat for several "
        "(default: classic)",
    )
    p.add_argument("--box-grow", type=float, default=0.05, help="grow GT boxes by this per side")
    p.add_argument("--limit", type=int, default=None, help="at most this many instances")
    p.add_argument(
        "--every",
        type=int,
        default=1,
        help="only every N-th object (with --offset): a fixed split, e.g. tune on --offset 0, "
        "report --offset 1",
    )
    p.add_argument("--offset", type=int, default=0, help="first object of --every")
    p.add_argument(
        "--max-side", type=int, default=1024, help="downscale longer image sides to this"
    )
    p.add_argument(
        "--min-area", type=float, default=0.0, help="skip GT instances smaller than this"
    )
    p.add_argument("--image-ids", type=str, default=None, help="only these image ids (a,b,c)")
    p.add_argument(
        "--weights",
        type=str,
        default=None,
        help="DeepMask (or for sam2: SAM 2) weights: a name or a file",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def _forward(target: str):  # type: ignore[no-untyped-def]
    """A handler passing the remaining arguments to a benchmark module's own `main(argv)`."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        module_name, func_name = target.split(":")
        return int(getattr(importlib.import_module(module_name), func_name)(list(args.args)) or 0)

    return handler
