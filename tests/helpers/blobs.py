"""A Mask R-CNN stand-in for tiling tests: it finds every saturated red or blue blob of the pixels
it is given, as a network finds objects (one too small in what it sees is missed, one cut by the
edge of its view comes back cut, and with `size` its masks come back at that full resolution, as
unmolding does), without TensorFlow."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.maskrcnn.instances import Instance

RED, BLUE = (220, 30, 30), (30, 30, 220)


class BlobDetector:
    """Mask R-CNN stand-in: each red blob is a 'fig', each blue one a 'date' (module docstring).

    `min_side`: blobs smaller than this in the pixels it is given are missed. `blind_to_shrunk`:
    nothing is found in a shrunk view (a network that misses the large object in the whole image).
    """

    def __init__(self, speed: int = 256, min_side: int = 12, blind_to_shrunk: bool = False):
        self.speed = speed
        self.path = Path("blobs.h5")
        self.min_score = 0.5
        self.classes = None
        self.min_side = min_side
        self.blind_to_shrunk = blind_to_shrunk
        self.calls: list[tuple[tuple[int, int], tuple[int, int] | None]] = []

    def detect_async(
        self, rgb: np.ndarray, size: tuple[int, int] | None = None
    ) -> concurrent.futures.Future[list[Instance]]:
        self.calls.append((rgb.shape[:2], size))
        future: concurrent.futures.Future[list[Instance]] = concurrent.futures.Future()
        future.set_result([] if size and self.blind_to_shrunk else self._find(rgb, size))
        return future

    def _find(self, rgb: np.ndarray, size: tuple[int, int] | None) -> list[Instance]:
        h, w = rgb.shape[:2]
        big_h, big_w = size or (h, w)
        sy, sx = big_h / h, big_w / w
        found = []
        for label, class_id, channel in (("fig", 1, 0), ("date", 2, 2)):
            on = (rgb[..., channel] > 150) & (rgb[..., 1] < 100)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(on.astype(np.uint8), 8)
            for i in range(1, n):
                x, y, bw, bh, _ = stats[i]
                if max(bw, bh) < self.min_side:
                    continue
                local = (labels[y : y + bh, x : x + bw] == i).astype(np.uint8)
                x0, y0 = round(x * sx), round(y * sy)
                x1, y1 = round((x + bw) * sx), round((y + bh) * sy)
                mask = cv2.resize(local, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST) > 0
                found.append(
                    Instance(label, class_id, 0.9, Box(x0, y0, x1, y1), MaskPatch(mask, x0, y0))
                )
        return found


def scene(width: int, height: int, blobs: list[tuple[Box, tuple[int, int, int]]]) -> np.ndarray:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    for box, colour in blobs:
        rgb[int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)] = colour
    return rgb
