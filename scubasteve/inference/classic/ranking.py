"""Ranking the classic engine's candidates without ground truth.

Each candidate gets a few image-driven features (how it fills the box, how it reaches the box's
sides, colour contrast inside/outside, edge strength along its outline, compactness, number of
parts, agreement with the other candidates, geodesic distance from the ring inside and outside
it, which generator made it). A linear model maps them to
an estimate of the candidate's IoU with the true object; proposals are ranked by that estimate.

The coefficients below were fitted by `python -m scubasteve.bench.classic_ranker` on one half of
the images of coco128-seg and one half of the objects of davis345 (ridge regression, prompt boxes
grown by a random 0..10 % per side) and checked on the other halves and on two LabelMe sets never
used for fitting (docs/proposals.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from scubasteve.inference.classic.crop import BINS_PER_CHANNEL, Crop

FAMILIES = ("gc", "ws", "geo", "shape", "variant", "consensus", "grabcut", "edit")

FEATURES = (
    "fill",
    "fill_sq",
    "gap_mean",
    "gap_max",
    "contrast",
    "edge",
    "compact",
    "parts",
    "agree",
    "agree_sq",
    "geo_in",
    "geo_out",
    "big",
    "big_grabcut",
    *(f"family_{f}" for f in FAMILIES),
)

#: Fitted coefficients (see the module docstring); "bias" is the intercept.
COEFFICIENTS: dict[str, float] = {
    "bias": 0.2068,
    "fill": -0.1850,
    "fill_sq": 0.0014,
    "gap_mean": 0.1355,
    "gap_max": -0.4926,
    "contrast": 0.1865,
    "edge": 0.0227,
    "compact": 0.0408,
    "parts": -0.0681,
    "agree": 0.4357,
    "agree_sq": 0.2775,
    "geo_in": 0.0152,
    "geo_out": 0.0334,
    "big": -0.1396,
    "big_grabcut": 0.1638,
    "family_gc": -0.0059,
    "family_ws": 0.0054,
    "family_geo": 0.0399,
    "family_shape": 0.0501,
    "family_variant": -0.0089,
    "family_consensus": -0.0255,
    "family_grabcut": -0.0216,
    "family_edit": 0.0000,
}

#: Coarser colour bins for the contrast feature (8 per channel): robust with few pixels.
_CONTRAST_SHIFT = int(math.log2(BINS_PER_CHANNEL)) - 3


def _parts(mask: np.ndarray, area: int) -> int:
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return int(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] >= max(1, 0.02 * area)))


def _contrast(crop: Crop, mask: np.ndarray) -> float:
    """1 - Bhattacharyya coefficient of the colour histograms inside and outside the mask."""
    n = BINS_PER_CHANNEL >> _CONTRAST_SHIFT
    coarse = crop.bins  # re-bin the 16**3 index to 8**3 without recomputing colours
    c0 = coarse // (BINS_PER_CHANNEL * BINS_PER_CHANNEL)
    c1 = (coarse // BINS_PER_CHANNEL) % BINS_PER_CHANNEL
    c2 = coarse % BINS_PER_CHANNEL
    idx = (
        ((c0 >> _CONTRAST_SHIFT) * n + (c1 >> _CONTRAST_SHIFT)) * n + (c2 >> _CONTRAST_SHIFT)
    ).ravel()
    m = mask.ravel()
    inside = np.bincount(idx[m], minlength=n**3).astype(np.float64)
    outside = np.bincount(idx[~m], minlength=n**3).astype(np.float64)
    if inside.sum() == 0 or outside.sum() == 0:
        return 0.0
    bc = np.sum(np.sqrt(inside / inside.sum() * outside / outside.sum()))
    return float(1.0 - bc)


def features(crop: Crop, mask: np.ndarray, family: str, agreement: float) -> np.ndarray:
    """The feature vector (in `FEATURES` order) of one candidate mask (h, w) bool."""
    area = int(np.count_nonzero(mask))
    box_px = max(1, int(np.count_nonzero(crop.inbox)))
    fill = area / box_px
    b = crop.frame.box
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size:
        bw, bh = max(b.width, 1e-3), max(b.height, 1e-3)
        gaps = (
            max(0.0, cols[0] - b.x0) / bw,
            max(0.0, b.x1 - cols[-1] - 1) / bw,
            max(0.0, rows[0] - b.y0) / bh,
            max(0.0, b.y1 - rows[-1] - 1) / bh,
        )
    else:
        gaps = (0.5, 0.5, 0.5, 0.5)
    outside = crop.inbox & ~mask
    # How far the box is above the shared window's scale (0 up to 96 px, 1 from 768 px).
    side = max(b.width / crop.frame.scale_x, b.height / crop.frame.scale_y)
    big = min(1.0, max(0.0, math.log2(max(side, 1.0) / 96.0) / 3.0))
    m8 = mask.astype(np.uint8)
    edge_px = cv2.morphologyEx(m8, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
    mean_grad = float(crop.grad[crop.inbox].mean()) if crop.inbox.any() else 0.0
    edge = float(crop.grad[edge_px].mean()) / (mean_grad + 1e-6) if edge_px.any() else 0.0
    contours, _ = cv2.findContours(m8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    compact = min(1.0, 4 * math.pi * area / perimeter**2) if perimeter > 0 else 0.0
    values = {
        "fill": fill,
        "fill_sq": fill * fill,
        "gap_mean": sum(gaps) / 4,
        "gap_max": max(gaps),
        "contrast": _contrast(crop, mask),
        "edge": min(edge, 4.0),
        "compact": compact,
        "parts": math.log1p(max(0, _parts(mask, area) - 1)),
        "agree": agreement,
        "agree_sq": agreement * agreement,
        "geo_in": float(np.minimum(crop.geodesic[mask], 2.0).mean()) if area else 0.0,
        "geo_out": float(np.minimum(crop.geodesic[outside], 2.0).mean()) if outside.any() else 0.0,
        "big": big,
        "big_grabcut": big if family == "grabcut" else 0.0,
    }
    for f in FAMILIES:
        values[f"family_{f}"] = 1.0 if family == f else 0.0
    return np.array([values[name] for name in FEATURES], dtype=np.float64)


def mean_agreement(masks: Sequence[np.ndarray]) -> np.ndarray:
    """For each mask, its mean IoU with the other masks ((n,) float64; 0 when alone)."""
    n = len(masks)
    if n < 2:
        return np.zeros(n)
    flat = np.stack([m.ravel() for m in masks]).astype(np.float32)
    # Pixel counts (exact in float32 below 2**24 pixels, in any order). Not `flat @ flat.T`: in
    # OpenBLAS's threads this 1 ms product took 100-160 ms on a busy CPU and the window froze
    # meanwhile (ADR 0105); einsum's own loop takes about 5 ms and never stretches.
    inter = np.einsum("ip,jp->ij", flat, flat)
    areas = np.diag(inter)
    union = areas[:, None] + areas[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    np.fill_diagonal(iou, 0.0)
    mean_iou: np.ndarray = iou.sum(axis=1) / (n - 1)
    return mean_iou


def score(feature_vector: np.ndarray, coefficients: dict[str, float] | None = None) -> float:
    """The estimated IoU of a candidate, clipped to [0, 1]."""
    coefs = COEFFICIENTS if coefficients is None else coefficients
    value = coefs.get("bias", 0.0) + sum(
        coefs.get(name, 0.0) * float(x) for name, x in zip(FEATURES, feature_vector, strict=True)
    )
    return float(min(1.0, max(0.0, value)))


#: How much a candidate's score drops when it ignores the neighbourhood of every click.
CLICK_PENALTY = 0.5


def click_penalty(mask: np.ndarray, bumps: Sequence[tuple[np.ndarray, bool]]) -> float:
    """Score penalty for a candidate that honours the clicked pixels but not their surroundings.

    For each click, the share of its Gaussian neighbourhood (see `graphcut.click_bumps`) that the
    mask gets wrong: covered around a negative click, uncovered around a positive one.
    """
    if not bumps:
        return 0.0
    wrong = 0.0
    for bump, positive in bumps:
        covered = float((bump * mask).sum() / max(bump.sum(), 1e-9))
        wrong += (1.0 - covered) if positive else covered
    return CLICK_PENALTY * wrong / len(bumps)
