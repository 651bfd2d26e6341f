"""How refinement by a mask-proposal engine changes PixelLib's instance masks (mask IoU against GT).

    scubasteve bench pixellib-refine --coco instances.json --images DIR [--refiner classic]
        [--model NAME] [--limit N]

Without `--model`, simulated masks stand in for Mask R-CNN's masks without its weights: each ground-truth mask is resampled to
28x28 inside its box and pasted back at 0.5, exactly the path a Mask R-CNN mask takes
(`instances.unmold_detections`), so it measures what refinement does to masks of Mask R-CNN's
resolution, with perfect boxes and labels. `--blur S` softens the 28x28 masks first
(a less certain network). `--model NAME` runs a real PixelLib model instead and matches each
ground-truth object to the same-label detection that overlaps it most.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from scubasteve.core.annotation import ImageDoc, MaskPatch
from scubasteve.core.geometry import mask_iou
from scubasteve.inference.base import patch_iou
from scubasteve.inference.maskrcnn.instances import MASK_THRESHOLD, Instance, resize_mask
from scubasteve.inference.maskrcnn.refine import DEFAULT_GROW, pick_refined, preferred

#: Mask R-CNN's mask head output size.
MASK_SIZE = 28


def simulated_maskrcnn_mask(gt: np.ndarray, blur: float = 0.0) -> MaskPatch | None:
    """A full-image bool GT mask as Mask R-CNN would return it: 28x28 inside its box, pasted back."""
    import cv2

    rows, cols = np.flatnonzero(gt.any(axis=1)), np.flatnonzero(gt.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = gt[y0:y1, x0:x1].astype(np.float32)
    small = cv2.resize(crop, (MASK_SIZE, MASK_SIZE), interpolation=cv2.INTER_AREA)
    if blur > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur)
    local = resize_mask(small, int(y1 - y0), int(x1 - x0)) >= MASK_THRESHOLD
    return MaskPatch(local, int(x0), int(y0)) if local.any() else None


@dataclass
class Row:
    label: str
    area: float
    pixellib: float
    agree: float
    top: float
    policy: float
    oracle: float  # the best of the k proposals against the ground truth
    seconds: float


def _instances_for(
    doc: ImageDoc, image: np.ndarray, args: argparse.Namespace, segmenter: object | None
) -> list[tuple[np.ndarray, Instance]]:
    h, w = doc.height, doc.width
    pairs: list[tuple[np.ndarray, Instance]] = []
    detections = segmenter.detect(image) if segmenter is not None else []  # type: ignore[attr-defined]
    for ann in doc.annotations:
        if not ann.has_area:
            continue
        gt = ann.to_mask(h, w)
        if gt.sum() < args.min_area:
            continue
        if segmenter is None:
            patch = simulated_maskrcnn_mask(gt, args.blur)
            if patch is None:
                continue
            pairs.append((gt, Instance(ann.label, 0, 1.0, patch.box(), patch)))
            continue
        same = [d for d in detections if d.label == ann.label]
        if not same:
            pairs.append((gt, None))  # type: ignore[arg-type]  (a missed object)
            continue
        best = max(same, key=lambda d: mask_iou(d.patch.to_full(h, w), gt))
        pairs.append((gt, best))
    return pairs


def measure(args: argparse.Namespace) -> list[Row]:
    from scubasteve.inference.engines import create_proposer
    from scubasteve.io.coco import read_coco

    dataset = read_coco(args.coco, args.images)
    proposer = create_proposer(args.refiner, device=args.device)
    segmenter = None
    if args.model:
        from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter

        segmenter = InstanceSegmenter(
            args.model, speed=args.speed, min_score=0.05, device=args.device
        )
    grow = DEFAULT_GROW if args.grow is None else args.grow
    rows: list[Row] = []
    for doc in dataset.docs:
        if args.limit and len(rows) >= args.limit:
            break
        image = doc.pixels()
        pairs = _instances_for(doc, image, args, segmenter)
        if not pairs:
            continue
        proposer.set_image(image)
        h, w = doc.height, doc.width
        for gt, inst in pairs:
            if args.limit and len(rows) >= args.limit:
                break
            if inst is None:
                rows.append(Row("?", float(gt.sum()), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
                continue
            started = time.perf_counter()
            box = inst.box.grow(grow).clip(w, h)
            proposals = proposer.propose(box, k=10)
            seconds = time.perf_counter() - started
            base = mask_iou(inst.patch.to_full(h, w), gt)
            agree, top = (
                pick_refined(inst, proposals, "agree"),
                pick_refined(inst, proposals, "top"),
            )
            agree_iou = mask_iou(agree.patch.to_full(h, w), gt) if agree else base
            top_iou = mask_iou(top.patch.to_full(h, w), gt) if top else base
            agreement = patch_iou(agree.patch, inst.patch) if agree else None
            refined = replace(inst, refined=agree, refined_iou=agreement)
            policy_iou = agree_iou if preferred(refined) == "refined" else base
            oracle = max((mask_iou(p.patch.to_full(h, w), gt) for p in proposals), default=base)
            rows.append(
                Row(
                    inst.label,
                    float(gt.sum()),
                    base,
                    agree_iou,
                    top_iou,
                    policy_iou,
                    oracle,
                    seconds,
                )
            )
        print(f"\r{len(rows)} instances", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def table(rows: list[Row]) -> str:
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        size = "small" if r.area < 32**2 else "medium" if r.area < 96**2 else "large"
        groups["all"].append(r)
        groups[size].append(r)
    lines = [
        "| objects | n | PixelLib mask IoU | refined (agree) | refined (top) | policy "
        "| best of 10 (oracle) | refined better | s/object |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("all", "small", "medium", "large"):
        g = groups.get(name)
        if not g:
            continue

        def mean(attr: str, g: list[Row] = g) -> float:
            return float(np.mean([getattr(r, attr) for r in g]))

        better = float(np.mean([r.agree > r.pixellib for r in g]))
        lines.append(
            f"| {name} | {len(g)} | {mean('pixellib'):.3f} | {mean('agree'):.3f} | {mean('top'):.3f} "
            f"| {mean('policy'):.3f} | {mean('oracle'):.3f} | {better:.0%} | {mean('seconds'):.2f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """`scubasteve bench pixellib-refine` (options in cli/bench.py): measure, print the table."""
    started = time.perf_counter()
    rows = measure(args)
    print(table(rows))
    print(f"{len(rows)} objects in {time.perf_counter() - started:.0f} s")
    return 0
