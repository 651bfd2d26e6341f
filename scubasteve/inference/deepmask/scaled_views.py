"""Scaled, grey-padded views of an image ("canvases") and the window geometry of the network.

Pure numpy/OpenCV, no torch. Coordinates are pixel-corner coordinates (pixel (r, c) covers
[c, c+1] x [r, r+1]); a canvas maps image point X to canvas point ``U = scale * X + offset``
(the same in both axes), so a network window of the canvas maps back to the image exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from scubasteve.inference.deepmask.config import GREY_RGB


@dataclass(frozen=True)
class ScaledView:
    """A (h, w, 3) uint8 RGB canvas showing the image at `scale`, shifted by (`ox`, `oy`).

    (What the DeepMask papers call a canvas; named apart from the window's `gui/canvas`.)"""

    pixels: np.ndarray
    scale: float
    ox: float
    oy: float

    def to_image(self, u: float, v: float) -> tuple[float, float]:
        """Image point of canvas point (u, v)."""
        return (u - self.ox) / self.scale, (v - self.oy) / self.scale


class ImagePyramid:
    """The image and its octave downscalings (area interpolation), to draw canvases from.

    A canvas at scale s is warped from the smallest stored image that is at least s times the
    original, so downscaling never skips pixels (no aliasing) and upscaling stays bilinear.
    """

    def __init__(self, image: np.ndarray, min_side: int = 16):
        self.height, self.width = image.shape[:2]
        self.levels: list[tuple[float, float, np.ndarray]] = [(1.0, 1.0, image)]
        current = image
        while min(current.shape[:2]) >= 2 * min_side:
            h, w = current.shape[:2]
            current = cv2.resize(
                current, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA
            )
            self.levels.append(
                (current.shape[1] / self.width, current.shape[0] / self.height, current)
            )

    def scaled_view(
        self, scale: float, ox: float, oy: float, width: int, height: int
    ) -> ScaledView:
        """The (height, width) canvas with U = scale * X + ox, V = scale * Y + oy, grey outside."""
        px, py, src = self.levels[0]
        for lx, ly, img in self.levels:
            if min(lx, ly) >= scale:
                px, py, src = lx, ly, img
        # Source pixel index x_s has corner coordinate x_s; image corner X = x_s / px. Index
        # coordinates of OpenCV sit at pixel centres, hence the half-pixel terms.
        ax, ay = scale / px, scale / py
        matrix = np.array(
            [[ax, 0.0, ox + 0.5 * ax - 0.5], [0.0, ay, oy + 0.5 * ay - 0.5]], dtype=np.float64
        )
        pixels = cv2.warpAffine(
            src,
            matrix,
            (int(width), int(height)),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=GREY_RGB,
        )
        return ScaledView(pixels, scale, ox, oy)


def level_scale(level: int, per_octave: int) -> float:
    return float(2.0 ** (level / per_octave))


def nearest_level(scale: float, per_octave: int) -> int:
    return round(per_octave * math.log2(scale))


def whole_canvas_size(
    width: int, height: int, scale: float, margin: int, stride: int
) -> tuple[int, int]:
    """Canvas size (multiple of the stride) holding the scaled image plus `margin` on each side."""

    def up(v: float) -> int:
        return int(math.ceil(v / stride) * stride)

    return up(width * scale + 2 * margin), up(height * scale + 2 * margin)


def warp_logits(
    logits: np.ndarray,
    win: tuple[float, float, float],
    region: tuple[float, float],
    gscale: float,
    out_size: tuple[int, int],
    outside: float = -30.0,
) -> np.ndarray:
    """Resample window logits (m, m) onto a grid: grid point G = (X - region) * gscale.

    `win` is the window (x0, y0, side) in image coordinates; `out_size` is (width, height).
    """
    m = logits.shape[0]
    a = win[2] / m * gscale
    tx = (win[0] - region[0]) * gscale + 0.5 * a - 0.5
    ty = (win[1] - region[1]) * gscale + 0.5 * a - 0.5
    matrix = np.array([[a, 0.0, tx], [0.0, a, ty]], dtype=np.float64)
    return cv2.warpAffine(
        np.ascontiguousarray(logits, dtype=np.float32),
        matrix,
        out_size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=outside,
    )
