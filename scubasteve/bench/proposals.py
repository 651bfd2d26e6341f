"""`scubasteve bench proposals`: mask quality and latency of proposal engines from true boxes.

For every instance, the prompt box is its true box grown by `--box-grow` of its size per side; the
engine proposes `--k` masks, and the table reports per engine: mean IoU of the top-ranked
proposal, mean IoU of the best of the k, the share of objects whose best reaches 0.85 and 0.90,
latency p50/p90 to the first proposal (the first `on_proposal` call, or the return for engines
that deliver all at once) and to all k, and `set_image` time per image. An object with no
proposal counts as IoU 0. `evaluate_proposer` is the reusable part: give it any `MaskProposer`
and samples from `scubasteve.bench.samples`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from scubasteve.bench.samples import SampleImage
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer, Proposal, patch_iou


@dataclass
class SampleResult:
    """One object: IoUs, scores and sources of its proposals in rank order, and latencies (s)."""

    key: str
    image: str
    box: Box
    ious: list[float]
    scores: list[float]
    sources: list[str]
    first_s: float
    all_s: float
    proposals: list[Proposal] = field(default_factory=list, repr=False)

    @property
    def top_iou(self) -> float:
        return self.ious[0] if self.ious else 0.0

    @property
    def best_iou(self) -> float:
        return max(self.ious) if self.ious else 0.0


@dataclass
class EngineReport:
    """All results of one engine; the summary numbers are properties."""

    engine: str
    results: list[SampleResult] = field(default_factory=list)
    set_image_s: dict[str, float] = field(default_factory=dict)
    skipped_images: dict[str, str] = field(default_factory=dict)  # name -> why it was not used

    @property
    def count(self) -> int:
        return len(self.results)

    def _mean(self, values: Sequence[float]) -> float:
        return float(np.mean(values)) if len(values) else float("nan")

    @property
    def mean_top_iou(self) -> float:
        return self._mean([r.top_iou for r in self.results])

    @property
    def mean_best_iou(self) -> float:
        return self._mean([r.best_iou for r in self.results])

    def share_best_at_least(self, threshold: float) -> float:
        return self._mean([1.0 if r.best_iou >= threshold else 0.0 for r in self.results])

    @staticmethod
    def _pct(values: Sequence[float], q: float) -> float:
        return float(np.percentile(values, q)) if len(values) else float("nan")

    def first_ms(self, q: float) -> float:
        return 1000 * self._pct([r.first_s for r in self.results], q)

    def all_ms(self, q: float) -> float:
        return 1000 * self._pct([r.all_s for r in self.results], q)

    def set_image_ms(self, q: float) -> float:
        return 1000 * self._pct(list(self.set_image_s.values()), q)

    def summary(self) -> dict[str, float]:
        return {
            "objects": self.count,
            "mean_iou_top": self.mean_top_iou,
            "mean_iou_best": self.mean_best_iou,
            "share_best_ge_0.85": self.share_best_at_least(0.85),
            "share_best_ge_0.90": self.share_best_at_least(0.90),
            "first_ms_p50": self.first_ms(50),
            "first_ms_p90": self.first_ms(90),
            "all_ms_p50": self.all_ms(50),
            "all_ms_p90": self.all_ms(90),
            "set_image_ms_p50": self.set_image_ms(50),
            "set_image_ms_p90": self.set_image_ms(90),
        }


def evaluate_proposer(
    proposer: MaskProposer,
    images: Sequence[SampleImage],
    *,
    k: int = 10,
    keep_proposals: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> EngineReport:
    """Run `proposer` on every sample (one `set_image` per image) and score it against the truth.

    `keep_proposals` keeps the proposals themselves in the results (for `--out`); `progress` is
    called with (objects done, objects in all) after each object.
    """
    report = EngineReport(proposer.name)
    total = sum(len(si.samples) for si in images)
    done = 0
    for si in images:
        try:
            image = si.load()
        except InputError as exc:  # a truncated or unreadable image: report it, go on
            report.skipped_images[si.name] = str(exc)
            done += len(si.samples)
            if progress is not None:
                progress(done, total)
            continue
        t0 = time.perf_counter()
        proposer.set_image(image)
        report.set_image_s[si.name] = time.perf_counter() - t0
        for s in si.samples:
            first: list[float] = []

            def on_proposal(_p: Proposal, first: list[float] = first) -> None:
                if not first:
                    first.append(time.perf_counter())

            t0 = time.perf_counter()
            props = proposer.propose(s.box, k, on_proposal=on_proposal)
            t1 = time.perf_counter()
            props = props[:k]
            report.results.append(
                SampleResult(
                    key=s.key,
                    image=si.name,
                    box=s.box,
                    ious=[patch_iou(p.patch, s.gt) for p in props],
                    scores=[float(p.score) for p in props],
                    sources=[p.source for p in props],
                    first_s=(first[0] if first else t1) - t0,
                    all_s=t1 - t0,
                    proposals=list(props) if keep_proposals else [],
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
    return report


def format_table(reports: Sequence[EngineReport], k: int = 10) -> str:
    """A Markdown table: one row per engine."""
    head = (
        f"| engine | objects | mean IoU top-1 | mean IoU best of {k} | best >= 0.85 | best >= 0.90 "
        "| first ms p50 / p90 | all ms p50 / p90 | set_image ms p50 / p90 |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in reports:
        lines.append(
            f"| {r.engine} | {r.count} | {r.mean_top_iou:.3f} | {r.mean_best_iou:.3f} "
            f"| {100 * r.share_best_at_least(0.85):.1f} % "
            f"| {100 * r.share_best_at_least(0.90):.1f} % "
            f"| {r.first_ms(50):.0f} / {r.first_ms(90):.0f} "
            f"| {r.all_ms(50):.0f} / {r.all_ms(90):.0f} "
            f"| {r.set_image_ms(50):.1f} / {r.set_image_ms(90):.1f} |"
        )
    return "\n".join(lines)


def predictions_json(
    reports: Sequence[EngineReport], samples: Sequence[SampleImage], meta: dict | None = None
) -> dict:
    """Per engine and annotation id: the box, each proposal as COCO RLE with score/source, times."""
    from pycocotools import mask as mask_utils

    sizes = {si.name: (si.height, si.width) for si in samples}
    engines = {}
    for report in reports:
        instances = {}
        for r in report.results:
            h, w = sizes[r.image]
            props = []
            for p, iou in zip(r.proposals, r.ious, strict=True):
                full = np.asfortranarray(p.patch.to_full(h, w).astype(np.uint8))
                rle = mask_utils.encode(full)
                rle["counts"] = rle["counts"].decode("ascii")
                props.append(
                    {"segmentation": rle, "score": p.score, "source": p.source, "iou": iou}
                )
            instances[r.key] = {
                "image": r.image,
                "box_xyxy": [r.box.x0, r.box.y0, r.box.x1, r.box.y1],
                "proposals": props,
                "first_s": r.first_s,
                "all_s": r.all_s,
            }
        engines[report.engine] = {
            "summary": report.summary(),
            "set_image_s": report.set_image_s,
            "instances": instances,
        }
    return {"meta": meta or {}, "engines": engines}


def run(args: argparse.Namespace) -> int:
    """The `scubasteve bench proposals` handler."""
    from scubasteve.core.errors import InputError
    from scubasteve.inference.engines import create_proposer

    if args.k < 1:
        raise InputError(f"--k must be at least 1, got {args.k}")
    images = load_samples(args)
    total = sum(len(si.samples) for si in images)
    if total == 0:
        raise InputError(
            "no instances to evaluate (check --limit, --min-area, --image-ids)",
            args.coco or args.labelme,
        )
    engines = args.engine or ["classic"]
    reports = []
    for name in engines:
        proposer = create_proposer(
            name, device=args.device, weights=args.weights, input_size=args.input_size
        )
        note = getattr(proposer, "note", "")
        print(
            f"{name}: {total} objects in {len(images)} images" + (f" ({note})" if note else ""),
            file=sys.stderr,
        )

        def progress(done: int, total: int, name: str = name) -> None:
            if done % 50 == 0 or done == total:
                print(f"  {name}: {done}/{total}", file=sys.stderr)

        reports.append(
            evaluate_proposer(
                proposer, images, k=args.k, keep_proposals=args.out is not None, progress=progress
            )
        )
    print(format_table(reports, args.k))
    skipped = {name: why for r in reports for name, why in r.skipped_images.items()}
    for name, why in skipped.items():
        print(f"skipped image {name}: {why}", file=sys.stderr)
    if args.out is not None:
        from scubasteve.core.atomic import atomic_write_json

        meta = {
            "coco": str(args.coco) if args.coco else None,
            "images": str(args.images) if args.images else None,
            "labelme": str(args.labelme) if args.labelme else None,
            "box_grow": args.box_grow,
            "k": args.k,
            "max_side": args.max_side,
        }
        atomic_write_json(args.out, predictions_json(reports, images, meta), indent=None)
        print(f"wrote {args.out}", file=sys.stderr)
    return 1 if skipped else 0


def load_samples(args: argparse.Namespace) -> list[SampleImage]:
    """The samples the common options select (--coco/--images or --labelme, --limit, --every...)."""
    from scubasteve.bench.samples import every_nth

    images = _read_samples(args)
    half = getattr(args, "half", None)
    if half is not None:
        images = images[0 if half == "even" else 1 :: 2]
    every = getattr(args, "every", 1) or 1
    return every_nth(images, every, getattr(args, "offset", 0)) if every > 1 else images


def _read_samples(args: argparse.Namespace) -> list[SampleImage]:
    from scubasteve.bench.samples import load_coco_samples, load_labelme_samples
    from scubasteve.core.errors import InputError

    image_ids = None
    if getattr(args, "image_ids", None):
        try:
            image_ids = [int(x) for x in args.image_ids.split(",") if x.strip()]
        except ValueError as exc:
            raise InputError(f"--image-ids must be comma-separated integers: {exc}") from exc
    if args.labelme is not None:
        if args.coco is not None or args.images is not None:
            raise InputError("give either --labelme or --coco with --images, not both")
        if not args.labelme.is_dir():
            raise InputError("not a folder", args.labelme)
        images = load_labelme_samples(args.labelme, box_grow=args.box_grow, max_side=args.max_side)
        return _limit(images, args.limit) if args.limit is not None else images
    if args.coco is None or args.images is None:
        raise InputError("give --coco and --images (or --labelme FOLDER)")
    return load_coco_samples(
        args.coco,
        args.images,
        box_grow=args.box_grow,
        limit=args.limit,
        max_side=args.max_side,
        min_area=getattr(args, "min_area", 0.0),
        image_ids=image_ids,
    )


def _limit(images: list[SampleImage], limit: int) -> list[SampleImage]:
    out, left = [], limit
    for si in images:
        if left <= 0:
            break
        kept = si.samples[:left]
        left -= len(kept)
        out.append(SampleImage(si.name, si.width, si.height, kept, si.load))
    return out
