"""Ranking the candidates of IS-Net and the classic engine together, without ground truth.

Every candidate of one box, whichever engine made it, gets an estimate of its IoU with the object
the user means from a linear model of a few features, computed on one small grid over the box:

- what the network saw: how sure its map is inside the box (`cert`), how much of the box it fills,
  how much of it spills into the context around the box (`spill`: IS-Net returns the dominant
  object of its crop, so a bigger neighbour shows as probability outside the box), how much of the
  box's border it covers (`touch`), how far its mask stays from the box's sides, and the size of
  the box (the network is weak on small objects);
- what the classic engine thinks: its own IoU estimate of its best proposal, and how well that
  proposal agrees with the network's mask;
- the candidate itself: which engine made it, the classic engine's estimate and rank (for its
  own candidates), its agreement with the map, how it fills and reaches the box, and its best
  overlap with the other engine's candidates.

The network's features are multiplied with the "from the network" indicator and the classic
features with its complement, so one model learns when to trust which engine. The coefficients
below were fitted by `python -m scubasteve.bench.isnet_ranker` (ridge regression) on the even
images of coco128-seg and davis345 with boxes grown by a random 0..10 % per side, and checked on
the odd images and on two LabelMe sets never used for fitting (docs/proposals.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Side of the grid (px) the features are computed on; boxes smaller than this are used as they are.
GRID = 128

OBJECT_FEATURES = (
    "scale",
    "peak",
    "cert",
    "map_fill",
    "spill",
    "touch",
    "map_gap_mean",
    "map_gap_max",
    "classic_top",
    "agree_top",
)
CANDIDATE_FEATURES = ("est", "rank", "magree", "fill", "gap_mean", "gap_max", "cross")

#: The model's inputs, in order: the indicator, then products (see `design_row`).
FEATURES: tuple[str, ...] = (
    "isnet",
    *(f"isnet*{f}" for f in OBJECT_FEATURES),
    *(f"isnet*{f}" for f in CANDIDATE_FEATURES if f not in ("est", "rank")),
    *(f"classic*{f}" for f in OBJECT_FEATURES),
    *(f"classic*{f}" for f in CANDIDATE_FEATURES),
    "classic*magree*cert",
    "isnet*magree*cert",
    "classic*magree*touch",
    "classic*magree*spill",
)

#: Fitted coefficients (see the module docstring); "bias" is the intercept.
COEFFICIENTS: dict[str, float] = {
    "bias": 0.2590,
    "isnet": -0.0024,
    "isnet*scale": 0.0130,
    "isnet*peak": -0.0054,
    "isnet*cert": -0.0180,
    "isnet*map_fill": -0.0209,
    "isnet*spill": -0.2503,
    "isnet*touch": -0.4542,
    "isnet*map_gap_mean": -0.0540,
    "isnet*map_gap_max": -0.1490,
    "isnet*classic_top": -0.0848,
    "isnet*agree_top": 0.0475,
    "isnet*magree": 0.2614,
    "isnet*fill": 0.1008,
    "isnet*gap_mean": 0.1454,
    "isnet*gap_max": -0.1849,
    "isnet*cross": 0.2391,
    "classic*scale": -0.0332,
    "classic*peak": -0.2324,
    "classic*cert": -0.2173,
    "classic*map_fill": 0.0866,
    "classic*spill": 0.2727,
    "classic*touch": 0.1421,
    "classic*map_gap_mean": 0.1544,
    "classic*map_gap_max": 0.2228,
    "classic*classic_top": 0.2045,
    "classic*agree_top": -0.0234,
    "classic*est": 0.3792,
    "classic*rank": 0.0287,
    "classic*magree": 0.2533,
    "classic*fill": -0.0028,
    "classic*gap_mean": 0.0946,
    "classic*gap_max": -0.0805,
    "classic*cross": 0.1624,
    "classic*magree*cert": 0.2394,
    "isnet*magree*cert": 0.2443,
    "classic*magree*touch": -0.4192,
    "classic*magree*spill": -0.5782,
}


@dataclass(frozen=True)
class ObjectView:
    """The per-box facts every candidate's features share (see `OBJECT_FEATURES`)."""

    values: dict[str, float]


def gaps(mask: np.ndarray) -> tuple[float, float]:
    """Mean and largest distance of the mask's bounding box from the grid's sides (shares)."""
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return 0.5, 0.5
    sides = (cols[0] / w, (w - 1 - cols[-1]) / w, rows[0] / h, (h - 1 - rows[-1]) / h)
    return float(sum(sides) / 4), float(max(sides))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def soft_iou(mask: np.ndarray, prob: np.ndarray) -> float:
    """sum(min) / sum(max) of a (soft) mask and a probability map of the same shape."""
    union = float(np.maximum(prob, mask).sum())
    return float(np.minimum(prob, mask).sum()) / union if union > 0 else 0.0


def object_view(
    prob: np.ndarray,
    ring_mean: float,
    open_sides: tuple[bool, bool, bool, bool],
    box_side: float,
    classic_top: float,
    classic_top_mask: np.ndarray | None,
) -> ObjectView:
    """The per-box features.

    `prob`: the map on the grid over the box (h, w) float32. `ring_mean`: mean probability in the
    map's context around the box. `open_sides`: (left, right, top, bottom) True where the box does
    not end at the image's edge (an object cut by the image edge touches it rightly).
    `box_side`: the box's longer side in image pixels. `classic_top` and `classic_top_mask`: the
    classic engine's estimate for its best proposal and that mask on the grid (None: no proposal).
    """
    main = prob > 0.5
    border = []
    if open_sides[0]:
        border.append(main[:, 0])
    if open_sides[1]:
        border.append(main[:, -1])
    if open_sides[2]:
        border.append(main[0, :])
    if open_sides[3]:
        border.append(main[-1, :])
    touch = float(np.concatenate(border).mean()) if border else 0.0
    gap_mean, gap_max = gaps(main)
    values = {
        "scale": min(1.0, max(0.0, math.log2(max(box_side, 1.0) / 32.0) / 5.0)),
        "peak": float(prob.max()) if prob.size else 0.0,
        "cert": float(np.mean(np.abs(2.0 * prob - 1.0))) if prob.size else 0.0,
        "map_fill": float(main.mean()) if prob.size else 0.0,
        "spill": float(ring_mean),
        "touch": touch,
        "map_gap_mean": gap_mean,
        "map_gap_max": gap_max,
        "classic_top": float(classic_top),
        "agree_top": iou(main, classic_top_mask) if classic_top_mask is not None else 0.0,
    }
    return ObjectView(values)


def candidate_values(
    mask: np.ndarray,
    prob: np.ndarray,
    estimate: float,
    rank: int | None,
    cross: float,
) -> dict[str, float]:
    """The per-candidate features: `mask` (h, w) bool on the grid, `estimate` and `rank` the
    classic engine's (None for the network's candidates), `cross` the best IoU with a candidate
    of the other engine."""
    gap_mean, gap_max = gaps(mask)
    return {
        "est": float(estimate),
        "rank": 2.0 / (rank + 2) if rank is not None else 0.0,
        "magree": soft_iou(mask.astype(np.float32), prob),
        "fill": float(mask.mean()) if mask.size else 0.0,
        "gap_mean": gap_mean,
        "gap_max": gap_max,
        "cross": float(cross),
    }


def design_row(view: ObjectView, cand: dict[str, float], from_network: bool) -> np.ndarray:
    """The model's input vector (`FEATURES` order) of one candidate."""
    net = 1.0 if from_network else 0.0
    cla = 1.0 - net
    o = view.values
    row = [net]
    row += [net * o[f] for f in OBJECT_FEATURES]
    row += [net * cand[f] for f in CANDIDATE_FEATURES if f not in ("est", "rank")]
    row += [cla * o[f] for f in OBJECT_FEATURES]
    row += [cla * cand[f] for f in CANDIDATE_FEATURES]
    row += [cla * cand["magree"] * o["cert"], net * cand["magree"] * o["cert"]]
    # agreeing with a map of a bigger neighbour (cut by the box, spilling around it) is no merit
    row += [cla * cand["magree"] * o["touch"], cla * cand["magree"] * o["spill"]]
    return np.asarray(row, dtype=np.float64)


def estimate(row: np.ndarray, coefficients: dict[str, float] | None = None) -> float:
    """The estimated IoU of a candidate, clipped to [0, 1]."""
    coefs = COEFFICIENTS if coefficients is None else coefficients
    value = coefs.get("bias", 0.0) + sum(
        coefs.get(name, 0.0) * float(x) for name, x in zip(FEATURES, row, strict=True)
    )
    return float(min(1.0, max(0.0, value)))
