"""Keystroke-level model (Card, Moran and Newell, 1980) estimates of human time per object (no Qt).

Operator times in seconds, the textbook values:

- K = 0.28: press a key (average skilled typist, about 40 words per minute)
- P = 1.10: point with the mouse to a target on the screen
- B = 0.10: press or release a mouse button
- M = 1.35: mental preparation (deciding, looking for the right proposal)
- H = 0.40: move a hand between keyboard and mouse (not charged: the left hand stays on the
  keyboard, the right on the mouse, as the window's shortcuts are designed for)
- R: waiting for the program; the measured proposal latency is used.

Finishing by hand. An object whose accepted mask is still below the target IoU (0.90) is finished
with the vertex tool: V (edit tool), point at the annotation and click to select it (P + 2B), one
vertex fix per `VERTEX_SPACING_PX` of outline in error, each M + P + B + P + B (decide, point at
the vertex or edge, press, drag to the true outline, release), and W back to the box tool.
The outline in error is counted region by region: the error (missed pixels and extra pixels, as
8-connected regions) is fixed largest region first until the IoU reaches the target, the smaller
ones are left; a region costs ceil(half its perimeter / VERTEX_SPACING_PX) fixes, at least one
(a sliver between the drawn and the true outline has a perimeter of about twice its length).
The region that reaches the target is fixed only as far as needed (its share of the outline in
proportion to the share of its area needed). VERTEX_SPACING_PX = 12 is how densely people place
vertices when they draw outlines: the median spacing (outline length / vertices) of COCO's
hand-drawn polygons in coco128-seg (929 polygons; 25 % / 75 %: 5.8 / 24 px); it is in image pixels,
for images of 640 to 1,000 px as in the sets here.

When editing would take longer than drawing the object anew, the user redraws it: Delete, P
(polygon tool), M, one click (P + 2B) per VERTEX_SPACING_PX of the true outline, Enter, W. The
finishing cost is the smaller of the two, so it never exceeds drawing the polygon by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

K, P, B, M, H = 0.28, 1.10, 0.10, 1.35, 0.40
VERTEX_SPACING_PX = 12.0
#: One vertex fix: decide, point at the vertex, press, drag to the true outline, release.
VERTEX_FIX = M + P + B + P + B
#: Entering and leaving the vertex tool for one object: V, select the annotation (P + 2B), W.
FINISH_OVERHEAD = K + P + B + B + K
#: Redrawing instead: Delete, P (polygon tool), M, then per vertex P + 2B; Enter, W.
REDRAW_OVERHEAD = K + K + M + K + K
REDRAW_VERTEX = P + B + B


@dataclass(frozen=True)
class ObjectActions:
    """What the simulated annotator did for one object."""

    label_keys: int  # keys typed to change the label (0 when it stayed)
    pick_keys: int  # number keys pressed to choose proposals
    clicks: int  # corrective clicks inside the box
    wait_seconds: float  # total time spent waiting for proposals (box and clicks)
    vertex_fixes: int = 0  # vertex drags to finish the accepted mask by hand (0: none needed)
    outline_vertices: int = 0  # vertices to draw the object anew instead (0: no limit known)


def human_seconds(a: ObjectActions) -> float:
    """KLM estimate for one object: box drag, look, optional picks and clicks, Enter, finishing."""
    label = (M + a.label_keys * K) if a.label_keys else 0.0
    box = M + P + B + P + B  # decide, point to a corner, press, drag to the other corner, release
    look = M + a.pick_keys * K  # compare the ten proposals, press the best one's number
    clicks = a.clicks * (M + P + B + B)  # decide where, point, click
    accept = K  # Enter
    return label + box + a.wait_seconds + look + clicks + accept + finishing_seconds(a)


def finishing_seconds(a: ObjectActions) -> float:
    """Finishing by hand: vertex edits, or drawing the object anew when that is quicker."""
    if not a.vertex_fixes:
        return 0.0
    edit = FINISH_OVERHEAD + a.vertex_fixes * VERTEX_FIX
    if not a.outline_vertices:
        return edit
    return min(edit, REDRAW_OVERHEAD + a.outline_vertices * REDRAW_VERTEX)


def outline_vertices(gt: np.ndarray, spacing: float = VERTEX_SPACING_PX) -> int:
    """Vertices to draw the outline of `gt` ((H, W) bool, holes included) by hand."""
    import cv2

    contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return sum(max(3, math.ceil(cv2.arcLength(c, True) / spacing)) for c in contours)


def vertex_fixes(
    gt: np.ndarray, pred: np.ndarray, target: float = 0.90, spacing: float = VERTEX_SPACING_PX
) -> int:
    """Vertex fixes needed to bring `pred` to IoU >= `target` with `gt` ((H, W) bool each).

    The error regions are fixed largest first until the target is met; each costs
    max(1, ceil(half its perimeter / spacing)) fixes (see the module docstring).
    """
    import cv2

    inter, union = int(np.count_nonzero(gt & pred)), int(np.count_nonzero(gt | pred))
    if union == 0 or inter >= target * union:
        return 0
    regions: list[tuple[int, bool, float]] = []  # (area, missed?, half perimeter)
    for error, missed in ((gt & ~pred, True), (pred & ~gt, False)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), 8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            crop = (labels[y : y + h, x : x + w] == i).astype(np.uint8)
            contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            perimeter = sum(cv2.arcLength(c, True) for c in contours)
            regions.append((area, missed, perimeter / 2))
    fixes = 0
    for area, missed, half in sorted(regions, key=lambda r: r[0], reverse=True):
        # Missed pixels join the mask (intersection grows); extra ones leave it (union shrinks).
        needed = target * union - inter if missed else union - inter / target
        share = min(1.0, needed / area)
        fixes += max(1, math.ceil(share * half / spacing))
        if share < 1.0:
            break
        inter, union = (inter + area, union) if missed else (inter, union - area)
        if inter >= target * union:
            break
    return fixes


CONSTANTS_TEXT = (
    f"KLM operators: K={K} s per key, P={P} s per pointing, B={B} s per button press or release, "
    f"M={M} s per mental preparation, H={H} s homing (not charged: one hand on keys, one on the "
    "mouse); waits R = the measured proposal latency. Per object: [M + K per label key] + "
    "(M + P + B + P + B) box + R + (M + K per pick) + clicks x (M + P + 2B + R) + K (Enter). "
    "Finishing by hand (objects still below the target IoU): V + (P + 2B) select + fixes x "
    f"(M + P + B + P + B) + W, one fix per {VERTEX_SPACING_PX:g} px of outline in error (half the "
    "perimeter of each error region, largest regions first until the target is met, at least one "
    "per region), or, when quicker, Delete + P + M + (P + 2B) per 12 px of true outline + Enter + W."
)
