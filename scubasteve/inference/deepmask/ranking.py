"""Rank DeepMask's window masks for a box prompt and keep the best distinct ones.

All candidates are compared on one small grid over the prompt region (at most `grid_side` cells a
side), so ranking and duplicate removal cost little however large the object; only the chosen ones
are later drawn at full resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint
from scubasteve.inference.deepmask.scaled_views import warp_logits


@dataclass
class Candidates:
    """Network outputs of N windows: logits (N, m, m), objectness logits (N,), windows (x0, y0,
    side) in image coordinates, and a tag naming each window's scale step and shift."""

    logits: np.ndarray
    scores: np.ndarray
    windows: list[tuple[float, float, float]]
    tags: list[str]


@dataclass
class Choice:
    index: int
    threshold: float
    rank: float
    extras: dict[str, float] = field(default_factory=dict)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def select(
    cands: Candidates,
    box: Box,
    region: Box,
    points: Sequence[PromptPoint],
    opts: Any,
    k: int,
) -> list[Choice]:
    """The best `k` distinct (window, threshold) pairs, best first.

    Rank = score_weight * objectness + box_weight * IoU(mask's bounding box, prompt box)
    + point_weight * (share of positive points inside - 2 * share of negative points inside).
    A candidate whose grid mask overlaps a kept one by more than `duplicate_iou` is dropped.
    """
    n = len(cands.windows)
    if n == 0 or k <= 0:
        return []
    gs = min(1.0, opts.grid_side / max(region.width, region.height))
    gw, gh = max(1, math.ceil(region.width * gs)), max(1, math.ceil(region.height * gs))
    origin = (region.x0, region.y0)
    grids = np.stack(
        [
            warp_logits(lg, w, origin, gs, (gw, gh))
            for lg, w in zip(cands.logits, cands.windows, strict=True)
        ]
    )
    objectness = 1.0 / (1.0 + np.exp(-cands.scores.astype(np.float64)))
    thresholds = list(opts.thresholds)
    masks = np.concatenate([(grids > _logit(t)).reshape(n, -1) for t in thresholds])
    index = np.tile(np.arange(n), len(thresholds))
    thr = np.repeat(np.asarray(thresholds, dtype=np.float64), n)
    areas = masks.sum(axis=1)

    m3 = masks.reshape(-1, gh, gw)
    rows, cols = np.asarray(m3.any(axis=2)), np.asarray(m3.any(axis=1))
    y0, y1 = rows.argmax(axis=1), gh - rows[:, ::-1].argmax(axis=1)
    x0, x1 = cols.argmax(axis=1), gw - cols[:, ::-1].argmax(axis=1)
    bx0, by0 = (box.x0 - region.x0) * gs, (box.y0 - region.y0) * gs
    bx1, by1 = (box.x1 - region.x0) * gs, (box.y1 - region.y0) * gs
    iw = np.clip(np.minimum(x1, bx1) - np.maximum(x0, bx0), 0, None)
    ih = np.clip(np.minimum(y1, by1) - np.maximum(y0, by0), 0, None)
    inter = iw * ih
    union = (x1 - x0) * (y1 - y0) + (bx1 - bx0) * (by1 - by0) - inter
    box_iou = np.where((areas > 0) & (union > 0), inter / np.maximum(union, 1e-9), 0.0)

    rank = opts.score_weight * objectness[index] + opts.box_weight * box_iou
    if points:
        px = np.clip(((np.array([p.x for p in points]) - region.x0) * gs).astype(int), 0, gw - 1)
        py = np.clip(((np.array([p.y for p in points]) - region.y0) * gs).astype(int), 0, gh - 1)
        hits = masks[:, py * gw + px]
        positive = np.array([p.positive for p in points])
        if positive.any():
            rank = rank + opts.point_weight * hits[:, positive].mean(axis=1)
        if (~positive).any():
            rank = rank - 2.0 * opts.point_weight * hits[:, ~positive].mean(axis=1)

    order = [int(c) for c in np.argsort(-rank, kind="stable") if areas[c] > 0]
    flat = masks.astype(np.float32)
    kept: list[int] = []
    for c in order:
        if kept:
            inter_k = flat[kept] @ flat[c]
            iou = inter_k / (areas[kept] + areas[c] - inter_k)
            if float(iou.max()) > opts.duplicate_iou:
                continue
        kept.append(c)
        if len(kept) >= k:
            break
    out = []
    for c in kept:
        i = int(index[c])
        win = cands.windows[i]
        out.append(
            Choice(
                i,
                float(thr[c]),
                float(rank[c]),
                {
                    "objectness": float(objectness[i]),
                    "box_iou": float(box_iou[c]),
                    "threshold": float(thr[c]),
                    "window_x0": float(win[0]),
                    "window_y0": float(win[1]),
                    "window_size": float(win[2]),
                },
            )
        )
    return out
