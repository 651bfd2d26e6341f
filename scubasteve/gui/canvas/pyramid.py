"""Image pyramids for drawing very large images quickly when zoomed out (no Qt)."""

from __future__ import annotations

import cv2
import numpy as np

#: Stop halving once the longer side is at most this many pixels.
MIN_LEVEL_SIDE = 1024


def build_pyramid(rgb: np.ndarray, min_side: int = MIN_LEVEL_SIDE) -> list[np.ndarray]:
    """`rgb` ((H, W, 3) uint8) followed by copies halved in size until the longer side <= `min_side`.

    Level i is about 2**-i of the full size; drawing at a zoom of z uses the smallest level that still
    has at least one pixel per screen pixel, so a 12,000 x 9,000 image zoomed to fit costs no more than
    a 1,500 x 1,100 one.
    """
    levels = [rgb]
    current = rgb
    while max(current.shape[:2]) > min_side:
        h, w = current.shape[:2]
        current = cv2.resize(
            current, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA
        )
        levels.append(np.ascontiguousarray(current))
    return levels
