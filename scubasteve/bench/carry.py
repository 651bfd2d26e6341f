"""`scubasteve bench carry`: what carrying the previous image's shapes (C) saves on an image
sequence, in the real (offscreen) window, with the simulated user of `bench annotator`.

Sequences: `--frames FIRST LAST` takes the COCO file's images from FIRST to LAST (file names in
order; davis345's 016.jpg to 023.jpg are one boat, sampled from a video); `--pan N` makes N + 1
crops of each of `--photos` images with 3 to 8 objects, the crop moving 6 px right and 4 px down
per frame (near-identical photos, a slow camera pan). Objects under `MIN_AREA` pixels in a frame
are left out of both passes.

Each sequence is annotated twice, in two fresh folders. From scratch: `bench annotator`'s user on
every object of every frame (box, best proposal, clicks to the target IoU, the rest by hand).
With carrying: frame 1 as before; on each next frame C, then for each object the cheaper of
keeping its carried shape (Y, then finishing by hand to the target IoU when it is below) and
rejecting it (N) and annotating it from scratch at its cost in the first pass: a person sees
which is quicker. A carried shape that matches no object costs an N. Human time is the
keystroke-level model of `bench.klm`; C and each Y or N cost M + K. Before the next frame each
frame's shapes become what the user ends with (a kept shape that reached the target as it is,
every other object as it truly is), so the next frame carries what a person would carry.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.bench.annotator import ObjectLog, Player, annotate_object
from scubasteve.bench.klm import (
    K,
    M,
    ObjectActions,
    finishing_seconds,
    outline_vertices,
    vertex_fixes,
)
from scubasteve.bench.window import bench_window, show_image, wait_until

#: Objects smaller than this (pixels, in the frame) are left out.
MIN_AREA = 100
#: The pan: pixels the crop moves per frame (right, down).
PAN_STEP = (6, 4)
#: C, and each Y or N: decide, press.
REVIEW_KEY = M + K


@dataclass
class Frame:
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    objects: list[Any]  # ground-truth Annotations with at least MIN_AREA pixels


@dataclass
class CarryLog:
    """One object of frames 2.. of a sequence."""

    sequence: str
    frame: int
    label: str
    scratch_seconds: float  # from scratch, to the target IoU
    carry_seconds: float  # with carrying: kept and finished, or rejected and redone
    carried_iou: float  # of the carried shape matched to it (0: none)
    kept: bool
    finished_by_hand: bool
    engine_fitted: bool  # the carried shape is the engine's proposal, not the moved mask


def frames_from_coco(dataset: Any, first: str, last: str) -> list[Frame]:
    from scubasteve.io.images import load_image

    docs = sorted(dataset.docs, key=lambda d: d.path.name)
    chosen = [d for d in docs if first <= d.path.name <= last]
    return [Frame(d.path.name, load_image(d.path), _objects(d.annotations, d.height, d.width))
            for d in chosen]  # fmt: skip


def pan_frames(doc: Any, steps: int) -> list[Frame]:
    from scubasteve.core.annotation import Annotation
    from scubasteve.io.images import load_image

    rgb = load_image(doc.path)
    h, w = rgb.shape[:2]
    (sx, sy), masks = PAN_STEP, [(a.label, a.to_mask(h, w)) for a in doc.annotations if a.has_area]
    ch, cw = h - sy * steps, w - sx * steps
    frames = []
    for t in range(steps + 1):
        x, y = sx * t, sy * t
        cut = [(label, m[y : y + ch, x : x + cw]) for label, m in masks]
        objects = [Annotation.from_mask(label, m) for label, m in cut if m.sum() >= MIN_AREA]
        frames.append(
            Frame(f"{doc.path.stem}-{t}.png", rgb[y : y + ch, x : x + cw].copy(), objects)
        )
    return frames


def _objects(annotations: list[Any], h: int, w: int) -> list[Any]:
    return [a for a in annotations if a.has_area and a.to_mask(h, w).sum() >= MIN_AREA]


def _write(frames: list[Frame], folder: Path, labels: list[str]) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = folder / f"{i:03d}_{Path(frame.name).stem}.png"
        Image.fromarray(frame.rgb).save(path)
        paths.append(path)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return paths


def scratch_pass(
    player: Player, frames: list[Frame], paths: list[Path]
) -> list[list[ObjectLog | None]]:
    """Every object of every frame from scratch; each frame's logs in object order."""
    logs = []
    for row, (frame, path) in enumerate(zip(frames, paths, strict=True)):
        show_image(player.app, player.w, row, path)
        h, w = frame.rgb.shape[:2]
        logs.append([annotate_object(player, path.name, gt, h, w) for gt in frame.objects])
    return logs


def _match(carried: list[Any], objects: list[Any], h: int, w: int) -> dict[int, tuple[Any, float]]:
    """Object index -> (carried shape, IoU): best pairs of one label first, each used once."""
    from scubasteve.core.geometry import mask_iou

    pairs = []
    truth = [o.to_mask(h, w) for o in objects]
    for c in carried:
        cm = c.to_mask(h, w)
        pairs += [(mask_iou(cm, t), i, c) for i, (o, t) in enumerate(zip(objects, truth, strict=True))
                  if o.label == c.label]  # fmt: skip
    found: dict[int, tuple[Any, float]] = {}
    used: set[str] = set()
    for iou, i, c in sorted(pairs, key=lambda p: -p[0]):
        if iou > 0 and i not in found and c.id not in used:
            found[i] = (c, iou)
            used.add(c.id)
    return found


def carry_pass(
    player: Player, frames: list[Frame], paths: list[Path], scratch: list[list[ObjectLog | None]],
    sequence: str, target: float, latencies: list[float], overhead: dict[str, float],
) -> list[CarryLog]:  # fmt: skip
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from scubasteve.core.commands import AddAnnotation, ReplaceAnnotation

    w, app = player.w, player.app
    logs: list[CarryLog] = []
    for row, (frame, path) in enumerate(zip(frames, paths, strict=True)):
        show_image(app, w, row, path)
        doc = w.documents.current.doc
        h, wd = frame.rgb.shape[:2]
        done = [log is not None for log in scratch[row]]
        if row == 0:
            for gt, ok in zip(frame.objects, done, strict=True):
                if ok:
                    w.documents.push(AddAnnotation(dataclasses.replace(gt, source="manual")))
            continue
        t0 = time.perf_counter()
        QTest.keyClick(w.view, Qt.Key.Key_C)  # the batch starts at once, it ends when all are in
        wait_until(app, lambda: not w.refit.running)
        latencies.append(time.perf_counter() - t0)
        carried = [a for a in doc.annotations if a.needs_review]
        objects = [o for o, ok in zip(frame.objects, done, strict=True) if ok]
        costs = [log.human_seconds_to_target for log in scratch[row] if log is not None]
        with player.think():
            matched = _match(carried, objects, h, wd)
        keep_ids: set[str] = set()
        final = []
        for i, (gt, scratch_cost) in enumerate(zip(objects, costs, strict=True)):
            shape, iou = matched.get(i, (None, 0.0))
            keep = finish = 0.0
            fixes = 0
            if shape is not None:
                with player.think():
                    gt_mask = gt.to_mask(h, wd)
                    fixes = vertex_fixes(gt_mask, shape.to_mask(h, wd), target)
                    redraw = outline_vertices(gt_mask) if fixes else 0
                finish = finishing_seconds(ObjectActions(0, 0, 0, 0.0, fixes, redraw))
                keep = REVIEW_KEY + finish
            kept = shape is not None and keep <= REVIEW_KEY + scratch_cost
            cost = keep if kept else scratch_cost + (REVIEW_KEY if shape is not None else 0.0)
            if kept:
                keep_ids.add(shape.id)
            final.append((shape if kept and not fixes else None, gt, shape))
            logs.append(CarryLog(sequence, row, gt.label, round(scratch_cost, 2), round(cost, 2),
                                 round(iou, 4), kept, kept and fixes > 0,
                                 shape is not None and shape.source != "carried"))  # fmt: skip
        # C once per frame, and an N for each carried shape that matches no object.
        overhead[sequence] = overhead.get(sequence, 0.0) + REVIEW_KEY * (
            1 + len(carried) - len(matched)
        )
        for shape in carried:  # the user's keys, in the window
            w.annotator.select(shape.id)
            QTest.keyClick(w.view, Qt.Key.Key_Y if shape.id in keep_ids else Qt.Key.Key_N)
        for as_is, gt, shape in final:  # what the user ends with, for the next frame
            if as_is is not None:
                continue
            if shape is not None and shape.id in keep_ids:
                w.documents.push(ReplaceAnnotation(dataclasses.replace(gt, id=shape.id)))
            else:
                w.documents.push(AddAnnotation(dataclasses.replace(gt, source="manual")))
    return logs


def run(args: argparse.Namespace, proposer_factory: Any = None) -> int:
    from scubasteve.core.errors import InputError
    from scubasteve.gui.stall import StallMonitor
    from scubasteve.io.coco import read_coco

    dataset = read_coco(args.coco, args.images)
    if args.frames:
        sequences = [
            (f"{args.frames[0]}..{args.frames[1]}", frames_from_coco(dataset, *args.frames))
        ]
    else:
        photos = [d for d in dataset.docs if 3 <= sum(a.has_area for a in d.annotations) <= 8]
        sequences = [(d.path.name, pan_frames(d, args.pan)) for d in photos[: args.photos]]
    sequences = [(name, frames) for name, frames in sequences if len(frames) >= 2]
    if not sequences:
        raise InputError("no sequence of two or more frames: check --frames or --pan")
    logs: list[CarryLog] = []
    latencies: list[float] = []
    overhead: dict[str, float] = {}  # per sequence: the C presses and Ns for stray shapes
    monitor = StallMonitor()
    for name, frames in sequences:
        with tempfile.TemporaryDirectory(prefix="scubasteve-carry-") as tmp:
            passes: dict[str, Any] = {}
            for kind in ("scratch", "carry"):
                paths = _write(frames, Path(tmp) / kind, dataset.categories)
                with bench_window(paths[0].parent, args, proposer_factory) as (app, window, info):
                    player = Player(app, window, args.max_clicks, monitor, args.target_iou)
                    if kind == "scratch":
                        passes[kind] = scratch_pass(player, frames, paths)
                    else:
                        logs += carry_pass(player, frames, paths, passes["scratch"], name,
                                           args.target_iou, latencies, overhead)  # fmt: skip
                    window.documents.flush()
        print(f"... {name}: {len(frames)} frames", file=sys.stderr, flush=True)
    report(logs, overhead, latencies, info, args)
    return 0


def report(
    logs: list[CarryLog], overhead: dict[str, float], latencies: list[float], info: Any,
    args: argparse.Namespace,
) -> None:  # fmt: skip
    def row(part: list[CarryLog]) -> str:
        n = len(part)
        scratch = sum(g.scratch_seconds for g in part)
        carry = sum(g.carry_seconds for g in part)
        carry += sum(overhead.get(name, 0.0) for name in {g.sequence for g in part})
        kept = sum(g.kept for g in part)
        matched = [g for g in part if g.carried_iou > 0]
        return " | ".join([
            str(n), f"{scratch / n:.1f}", f"{carry / n:.1f}",
            f"{100 * (scratch - carry) / scratch:.0f} %" if scratch else "-",
            f"{kept} ({sum(not g.finished_by_hand for g in part if g.kept)} as carried)",
            f"{np.mean([g.carried_iou for g in matched]):.3f}" if matched else "-",
            f"{sum(g.engine_fitted for g in matched)} of {len(matched)}",
        ])  # fmt: skip

    print(f"engine: {info.name} on {info.device}; target IoU {args.target_iou}; "
          f"carry latency (C to shapes shown) p50 {np.percentile(latencies, 50):.2f} s, "
          f"p90 {np.percentile(latencies, 90):.2f} s over {len(latencies)} frames\n")  # fmt: skip
    print(
        "| sequence | objects (frames 2..) | human s/object, from scratch | with carry | saved "
        "| carried shapes kept | mean IoU of carried shapes | fitted by the engine |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(g.sequence for g in logs):
        print(f"| {name} | {row([g for g in logs if g.sequence == name])} |")
    if len({g.sequence for g in logs}) > 1:
        print(f"| all | {row(logs)} |")
