"""Simplify pixel outlines without moving any pixel: Douglas-Peucker with a pixel-centre constraint.

A pixel outline (a staircase of unit edges at pixel boundaries) has, beside each unit edge, one
pixel centre inside the object and one outside, each half a pixel away. A chord may replace a stretch
of the outline when it stays within the tolerance of it AND keeps every such inside centre on its
inside and every outside centre on its outside. Straight and gently curved stretches (digital
straight segments) then collapse to one edge, yet rasterising the result gives back the same pixels.
Callers verify the result and fall back to plain simplification if a ring ever breaks that promise.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-9
#: Pixel centres must stay at least this far (px) from a chord. Rasterisers differ in how they treat
#: a centre lying (almost) on an edge: pycocotools, for one, works on a 1/5-pixel grid.
MARGIN = 0.12


def unit_steps(ring: np.ndarray) -> np.ndarray:
    """The vertices of a closed axis-aligned ring with integer corners, one per unit step.

    `ring`: (N, 2) corner points, open (first point not repeated). Returns (M, 2) float64, open.
    """
    closed = np.vstack([ring, ring[:1]])
    deltas = np.diff(closed, axis=0)
    lengths = np.abs(deltas).sum(axis=1).round().astype(np.int64)
    keep = lengths > 0
    starts, deltas, lengths = closed[:-1][keep], deltas[keep], lengths[keep]
    unit = deltas / lengths[:, None]
    reps = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    points: np.ndarray = starts[reps] + unit[reps] * offsets[:, None]
    return points


def _cross(d: np.ndarray, v: np.ndarray) -> np.ndarray:
    cross: np.ndarray = d[0] * v[:, 1] - d[1] * v[:, 0]
    return cross


def simplify_pixel_ring(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Fewer vertices for a pixel-edge ring whose inside lies to the LEFT of its travel direction.

    `ring`: (N, 2) integer-valued corners, open. Returns (M, 2) vertices (a subset of the midpoints
    of the ring's unit edges), open. The result stays within `tolerance` of those midpoints.
    """
    corners = unit_steps(np.asarray(ring, dtype=np.float64))
    n = len(corners)
    if n <= 4:
        return corners
    direction = np.diff(np.vstack([corners, corners[:1]]), axis=0)  # (n, 2) unit steps
    left = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    # Vertices are edge midpoints, not pixel corners: a chord between lattice corners often runs
    # exactly through pixel centres (a tie for any rasteriser); a chord between midpoints cannot.
    mids = corners + direction / 2
    inside = mids + left / 2
    outside = mids - left / 2
    # At a corner the pixel diagonal to the turn touches the outline too: outside at a left (convex)
    # turn, inside at a right (concave) one. Straight runs have no such pixel (their flag is 0).
    incoming = np.roll(direction, 1, axis=0)
    turn = np.sign(incoming[:, 0] * direction[:, 1] - incoming[:, 1] * direction[:, 0])
    diagonal = corners + (incoming - direction) / 2
    chain = np.vstack([mids, mids[:1]])  # closed chain: index n is index 0 again
    inside = np.vstack([inside, inside[:1]])
    outside = np.vstack([outside, outside[:1]])
    diagonal = np.vstack([diagonal, diagonal[:1]])
    turn = np.append(turn, turn[0])

    def chord_ok(i: int, j: int) -> bool:
        d = chain[j] - chain[i]
        length = float(np.hypot(*d))
        if length < _EPS:
            return False
        if np.abs(_cross(d, chain[i : j + 1] - chain[i])).max() / length > tolerance:
            return False
        margin = MARGIN * length
        if (_cross(d, inside[i : j + 1] - chain[i]) < margin).any():
            return False
        if (_cross(d, outside[i : j + 1] - chain[i]) > -margin).any():
            return False
        side = _cross(d, diagonal[i + 1 : j + 1] - chain[i]) * -turn[i + 1 : j + 1]
        return bool((side[turn[i + 1 : j + 1] != 0] >= margin).all())

    # Split the closed chain at the point farthest from its start, then refine each half.
    far = int(np.argmax(np.hypot(*(mids - mids[0]).T)))
    keep = np.zeros(n + 1, dtype=bool)
    keep[[0, far, n]] = True
    stack = [(0, far), (far, n)]
    while stack:
        i, j = stack.pop()
        if j - i < 2 or chord_ok(i, j):
            continue
        d = chain[j] - chain[i]
        length = float(np.hypot(*d))
        seg = chain[i + 1 : j] - chain[i]
        if length < _EPS:
            k = i + 1 + int(np.argmax(np.hypot(*seg.T)))
        else:
            k = i + 1 + int(np.argmax(np.abs(_cross(d, seg))))
        keep[k] = True
        stack.extend([(i, k), (k, j)])
    return chain[:-1][keep[:-1]]
