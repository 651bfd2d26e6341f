"""Per-image work of the classic engine: the RGB image and a pyramid of halvings.

Every request resamples a window around its box to a fixed working size. Reading that window from
a pyramid level where it is at most twice the working size keeps the cost of a request bounded on
any image (a whole-image box on a 20,000 px photo reads a small level, not 400 million pixels) and
avoids aliasing from large bilinear downscales.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from scubasteve.inference.base import as_rgb

#: Levels stop once the longer side is at most this many pixels.
SMALLEST_LEVEL = 64


@dataclass(frozen=True, eq=False)
class ImageCache:
    """`levels[0]` is the image ((H, W, 3) uint8 RGB); level i is about 2**-i of its size.

    `scales[i]` is level i's width divided by the image's width (its exact resampling factor).
    """

    levels: tuple[np.ndarray, ...]
    scales: tuple[float, ...]

    @classmethod
    def build(cls, image: np.ndarray) -> ImageCache:
        """The cache for a grayscale, RGB or RGBA array (ValueError for anything else)."""
        rgb = as_rgb(image)
        levels = [rgb]
        width = rgb.shape[1]
        scales = [1.0]
        while max(levels[-1].shape[:2]) > 2 * SMALLEST_LEVEL and min(levels[-1].shape[:2]) >= 2:
            prev = levels[-1]
            size = (max(1, prev.shape[1] // 2), max(1, prev.shape[0] // 2))
            levels.append(cv2.resize(prev, size, interpolation=cv2.INTER_AREA))
            scales.append(size[0] / width)
        return cls(tuple(levels), tuple(scales))

    @property
    def height(self) -> int:
        return int(self.levels[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.levels[0].shape[1])

    @property
    def image(self) -> np.ndarray:
        return self.levels[0]

    def level_for(self, working_scale: float) -> tuple[np.ndarray, float]:
        """The coarsest level that still has at least the working resolution, and its scale."""
        best = 0
        for i, s in enumerate(self.scales):
            if s >= working_scale:
                best = i
        return self.levels[best], self.scales[best]
