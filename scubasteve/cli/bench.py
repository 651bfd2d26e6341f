"""`scubasteve bench ...`: measurements that print tables (never pass/fail).

The measurements are in `scubasteve.bench`; each handler here imports its
module when the command runs, so `scubasteve --help` loads none of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scubasteve.core.errors import Problem


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure proposal quality, speed and the annotator loop")
    kinds = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    p = kinds.add_parser(
        "proposals", help="mask proposals from GT boxes: IoU and latency per engine"
    )
    _sample_options(p)
    p.add_argument("--k", type=int, default=10, help="proposals per box")
    p.add_argument("--out", type=Path, default=None, help="write per-instance proposals (RLE) here")
    p.set_defaults(handler=bench_proposals)

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
    c.set_defaults(handler=bench_clicks)

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
    a.add_argument(
        "--engine",
        default="ensemble",
        help="engine the window uses: ensemble, classic, isnet, deepmask, sam2",
    )
    a.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    a.add_argument("--out", type=Path, default=None, help="write the per-object log (JSON) here")
    a.set_defaults(handler=bench_annotator)

    r = kinds.add_parser(
        "carry",
        help="what carrying the previous image's shapes (C) saves on an image sequence",
    )
    r.add_argument("--coco", type=Path, required=True)
    r.add_argument("--images", type=Path, required=True)
    seq = r.add_mutually_exclusive_group(required=True)
    seq.add_argument("--frames", nargs=2, metavar=("FIRST", "LAST"),
                     help="the images from FIRST to LAST (file names, in order) are the frames")  # fmt: skip
    seq.add_argument("--pan", type=int, metavar="N",
                     help="N + 1 crops of each photo, moving 6 px right and 4 px down a frame")  # fmt: skip
    r.add_argument("--photos", type=int, default=3, help="with --pan: how many photos")
    r.add_argument("--max-clicks", type=int, default=10, help="corrective clicks per object")
    r.add_argument("--target-iou", type=float, default=0.90)
    r.add_argument("--engine", default="ensemble", help="engine the window uses")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    r.set_defaults(handler=bench_carry)

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
    d.set_defaults(handler=bench_deepmask_precision)

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
    w.set_defaults(handler=bench_deepmask_whole_image)

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
    t.set_defaults(handler=bench_training)

    s = kinds.add_parser("startup", help="time `scubasteve --help` and the window's first paint")
    s.add_argument("--repeat", type=int, default=5)
    s.set_defaults(handler=bench_startup)

    r = kinds.add_parser(
        "pixellib-refine",
        help="how proposal refinement changes Mask R-CNN mask IoU",
        description="Mask IoU against the ground truth of Mask R-CNN's masks, before and after "
        "refinement by a mask-proposal engine. Without --model, each ground-truth mask is resampled "
        "to Mask R-CNN's 28x28 inside its box (perfect boxes and labels); with --model a real "
        "PixelLib model runs and each object is matched to the same-label detection overlapping "
        "it most.",
    )
    r.add_argument("--coco", type=Path, required=True)
    r.add_argument("--images", type=Path, default=None)
    r.add_argument("--refiner", default="classic", help="engine: classic, isnet, ensemble, ...")
    r.add_argument("--model", default=None, help="a PixelLib model instead of simulated masks")
    r.add_argument("--speed", default="1024")
    r.add_argument("--blur", type=float, default=0.0, help="Gaussian sigma on the 28x28 masks")
    r.add_argument("--grow", type=float, default=None, help="box growth per side")
    r.add_argument("--min-area", type=float, default=0.0)
    r.add_argument("--limit", type=int, default=None, help="at most this many objects")
    r.add_argument("--device", default="auto")
    r.set_defaults(handler=bench_pixellib_refine)

    v = kinds.add_parser(
        "pixellib-speed",
        help="Mask R-CNN seconds per image at each speed preset",
        description="Seconds per image of a PixelLib model at each speed preset. --random BACKBONE "
        "builds a COCO-shaped (81-class) Mask R-CNN with random weights first, so the real "
        "topology is timed without downloading its weights. The first image of each preset is a "
        "warm-up and not counted.",
    )
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model name or .h5 file")
    src.add_argument("--random", choices=("resnet50", "resnet101"), help="random COCO-shaped model")
    v.add_argument("--images", type=Path, required=True)
    v.add_argument("--limit", type=int, default=5, help="timed images per preset")
    v.add_argument("--speeds", default="1024,512,384,256")
    v.add_argument("--device", default="auto")
    v.set_defaults(handler=bench_pixellib_speed)

    g = kinds.add_parser(
        "large-image",
        help="time and peak memory of an engine on a huge image (set_image, a box, the whole image)",
        description="One engine per run: set_image, a 600 x 400 box in the middle and a box over "
        "the whole image, each with its seconds, the process's peak RSS and the Python-side peak "
        "(tracemalloc). --window measures the real window (offscreen) instead: opening the image "
        "and the same boxes dragged.",
    )
    g.add_argument("--engine", default="classic", help="classic, isnet, ensemble or deepmask")
    g.add_argument("--size", default="12000x9000", help="image size, WIDTHxHEIGHT")
    g.add_argument(
        "--photo", type=Path, default=None, help="a photo resized to --size (default: synthetic)"
    )
    g.add_argument(
        "--weights",
        default=None,
        help="IS-Net model for isnet/ensemble (default: the installed one); DeepMask model for "
        "deepmask (default: random weights)",
    )
    g.add_argument("--device", default="cpu", help="cpu, auto, cuda or mps")
    g.add_argument("--window", action="store_true", help="measure the real window (offscreen)")
    g.set_defaults(handler=bench_large_image)


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
        help="engine to run (ensemble, classic, isnet, deepmask, sam2, box, grabcut); repeat for "
        "several (default: classic)",
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
        "--half",
        choices=("even", "odd"),
        default=None,
        help="only the images at even (0, 2, ...) or odd positions of the file: the split the "
        "learned engine's ranking and fine-tuning use (fitted on even, reported on odd)",
    )
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
        help="the learned engine's weights: a name or a file (for ensemble, its kind chooses the "
        "learned engine)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--input-size", type=int, default=None, help="IS-Net's network input side (px)")


# --- handlers: each imports its benchmark when the command runs ---------------------------------


def _reporting_sample_problems(run: Callable[[argparse.Namespace], int], args) -> int:  # type: ignore[no-untyped-def]
    """Run a benchmark, printing each problem its samples' readers find as it is found; an error
    among them (an object or image left out) makes the exit status 1, as in `validate`."""
    from scubasteve.bench.samples import problems_reported_to

    errors = 0

    def show(problem: Problem) -> None:
        nonlocal errors
        print(problem, file=sys.stderr)
        errors += problem.severity == "error"

    with problems_reported_to(show):
        code = run(args)
    if errors:
        print(
            f"{errors} error(s) in the data: the entries named above were left out", file=sys.stderr
        )
    return code or (1 if errors else 0)


def bench_proposals(args: argparse.Namespace) -> int:
    from scubasteve.bench import proposals

    return _reporting_sample_problems(proposals.run, args)


def bench_clicks(args: argparse.Namespace) -> int:
    from scubasteve.bench import clicks

    return _reporting_sample_problems(clicks.run, args)


def bench_annotator(args: argparse.Namespace) -> int:
    from scubasteve.bench import annotator

    return annotator.run(args)


def bench_carry(args: argparse.Namespace) -> int:
    from scubasteve.bench import carry

    return carry.run(args)


def bench_deepmask_precision(args: argparse.Namespace) -> int:
    from scubasteve.bench import deepmask_precision

    return _reporting_sample_problems(deepmask_precision.run, args)


def bench_deepmask_whole_image(args: argparse.Namespace) -> int:
    from scubasteve.bench import deepmask_whole_image

    return deepmask_whole_image.run(args)


def bench_training(args: argparse.Namespace) -> int:
    import sys

    from scubasteve.bench import training
    from scubasteve.cli.progress import tqdm_bars

    bars = tqdm_bars(mask="mask", score="score") if sys.stderr.isatty() else None
    return training.run(args, progress=bars)


def bench_startup(args: argparse.Namespace) -> int:
    from scubasteve.bench import startup

    return startup.run(args)


def bench_pixellib_refine(args: argparse.Namespace) -> int:
    from scubasteve.bench import pixellib_refine

    return pixellib_refine.run(args)


def bench_pixellib_speed(args: argparse.Namespace) -> int:
    from scubasteve.bench import pixellib_speed

    return pixellib_speed.run(args)


def bench_large_image(args: argparse.Namespace) -> int:
    from scubasteve.bench import large_image

    return large_image.run(args)
