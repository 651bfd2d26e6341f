"""Proposal quality on held-out images: prompt with each object's box, score the ten proposals.

The prompt box is the object's mask bounding box grown by `box_grow` of its size per side, as in
`scubasteve bench proposals`. Reports the mean IoU of the top-ranked proposal and of the best of
the `k`, over objects of at least `min_area` pixels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scubasteve.core.annotation import ImageDoc, MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.inference.base import MaskProposer, patch_iou


@dataclass
class ProposalQuality:
    engine: str
    top1: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    propose_s: list[float] = field(default_factory=list)
    set_image_s: list[float] = field(default_factory=list)
    cached_s: list[float] = field(default_factory=list)  # proposals served from cached features

    @property
    def objects(self) -> int:
        return len(self.top1)

    def summary(self) -> dict[str, float]:
        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q)) if values else float("nan")

        return {
            "objects": self.objects,
            "top1_mean_iou": float(np.mean(self.top1)) if self.top1 else float("nan"),
            "best_mean_iou": float(np.mean(self.best)) if self.best else float("nan"),
            "propose_ms_p50": 1000 * pct(self.propose_s, 50),
            "propose_ms_p90": 1000 * pct(self.propose_s, 90),
            "set_image_ms_p50": 1000 * pct(self.set_image_s, 50),
            "cached_objects": len(self.cached_s),
            "cached_propose_ms_p50": 1000 * pct(self.cached_s, 50),
            "cached_propose_ms_p90": 1000 * pct(self.cached_s, 90),
        }


def evaluate_boxes(
    proposer: MaskProposer,
    docs: Sequence[ImageDoc],
    *,
    k: int = 10,
    box_grow: float = 0.05,
    min_area: int = 1,
    limit: int | None = None,
    cancel: CancelToken | None = None,
) -> ProposalQuality:
    """Run `proposer` on every object of `docs` (one `set_image` per image).

    Raises `Cancelled` between objects (and inside the engine's `propose`) once `cancel` is set."""
    out = ProposalQuality(getattr(proposer, "name", type(proposer).__name__))
    for doc in docs:
        objects = []
        for ann in doc.annotations:
            if ann.extra.get("iscrowd") or not ann.has_area:
                continue
            gt = MaskPatch.from_full(ann.to_mask(doc.height, doc.width))
            if gt.area >= min_area:
                objects.append(gt)
        if limit is not None:
            objects = objects[: max(0, limit - out.objects)]
        if not objects:
            continue
        raise_if_cancelled(cancel)
        image = doc.pixels()
        t0 = time.perf_counter()
        proposer.set_image(image)
        out.set_image_s.append(time.perf_counter() - t0)
        for gt in objects:
            box = gt.box().grow(box_grow).clip(doc.width, doc.height)
            t0 = time.perf_counter()
            props = proposer.propose(box, k, cancel=cancel)[:k]
            seconds = time.perf_counter() - t0
            out.propose_s.append(seconds)
            if getattr(proposer, "last_trunk_passes", None) == 0:
                out.cached_s.append(seconds)
            ious = [patch_iou(p.patch, gt) for p in props]
            out.top1.append(ious[0] if ious else 0.0)
            out.best.append(max(ious) if ious else 0.0)
        if limit is not None and out.objects >= limit:
            break
    return out


def format_quality(
    rows: Sequence[tuple[str, ProposalQuality]], k: int = 10, timings: bool = True
) -> str:
    """A Markdown table of each row's mean IoU (and, with `timings`, its latencies), its columns
    padded to line up in a fixed-width font."""
    head = ["model", "objects", "mean IoU top-1", f"mean IoU best of {k}"]
    if timings:
        head += ["propose ms p50 / p90", "from cache: objects, ms p50 / p90", "set_image ms p50"]
    table = [head]
    for name, q in rows:
        s = q.summary()
        cells = [name, str(s["objects"]), f"{s['top1_mean_iou']:.3f}", f"{s['best_mean_iou']:.3f}"]
        if timings:
            cached = (
                f"{s['cached_objects']}, {s['cached_propose_ms_p50']:.0f} / "
                f"{s['cached_propose_ms_p90']:.0f}"
                if s["cached_objects"]
                else "-"
            )
            cells += [
                f"{s['propose_ms_p50']:.0f} / {s['propose_ms_p90']:.0f}",
                cached,
                f"{s['set_image_ms_p50']:.0f}",
            ]
        table.append(cells)
    widths = [max(len(r[c]) for r in table) for c in range(len(head))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(w) if c == 0 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 2) if c == 0 else "-" * (w + 1) + ":") for c, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(table[0]), rule, *(line(r) for r in table[1:])])


def classic_quality(
    docs: Sequence[ImageDoc], *, limit: int | None = None, cancel: CancelToken | None = None
) -> ProposalQuality | None:
    """The classic engine's quality on the same objects, or None when it cannot run here."""
    try:
        from scubasteve.inference.engines import create_proposer

        classic = create_proposer("classic")
    except Exception:  # a missing optional dependency only costs the comparison
        return None
    return evaluate_boxes(classic, docs, limit=limit, cancel=cancel)


def heldout_record(deepmask: ProposalQuality, classic: ProposalQuality | None) -> dict[str, float]:
    """What a model's sidecar keeps of a held-out measurement (the ensemble reads it).

    Both engines are measured on the same objects, so the ensemble can tell whether this model's
    proposals deserve the classic engine's trust (see `scubasteve.inference.engines`).
    """
    s = deepmask.summary()
    record = {"objects": s["objects"], "top1": s["top1_mean_iou"], "best": s["best_mean_iou"]}
    if classic is not None and classic.objects == deepmask.objects:
        c = classic.summary()
        record |= {"classic_top1": c["top1_mean_iou"], "classic_best": c["best_mean_iou"]}
    return record
