"""Box crops for the network and its probability map back in image coordinates (numpy and OpenCV).

A `Window` is an integer rectangle of the image plane (it may reach outside the image) that is
resampled to the network's square input: the box grown by a share of its size per side, as IS-Net
sees whole photos squeezed to a square in training. Only the part of the image inside the window
is read and resampled, so a 12,000 x 9,000 photo costs no more than its crop. Outside the image the
input is mid-grey, which the network's normalisation maps to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box

#: The grey outside the image (``pixel / 255 - 0.5`` makes it 0).
FILL = 127.5
#: Probability maps are brought back to the image at most this many pixels per side at once; a
#: larger box gets its mask at this resolution, enlarged by nearest neighbour.
MAX_MAP_SIDE = 2048


@dataclass(frozen=True)
class Window:
    """Image columns x0..x1-1 and rows y0..y1-1 that fill the network input (may exceed the image)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @classmethod
    def around(cls, box: Box, context: float, min_side: int = 8) -> Window:
        """The box grown by `context` of its width and height on each side, whole pixels."""
        grow_x = context * box.width
        grow_y = context * box.height
        x0, x1 = math.floor(box.x0 - grow_x), math.ceil(box.x1 + grow_x)
        y0, y1 = math.floor(box.y0 - grow_y), math.ceil(box.y1 + grow_y)
        if x1 - x0 < min_side:
            cx = (x0 + x1) // 2
            x0, x1 = cx - min_side // 2, cx - min_side // 2 + min_side
        if y1 - y0 < min_side:
            cy = (y0 + y1) // 2
            y0, y1 = cy - min_side // 2, cy - min_side // 2 + min_side
        return cls(x0, y0, x1, y1)


def extract(image: np.ndarray, window: Window, size: int) -> np.ndarray:
    """The window resampled to (size, size, 3) float32, normalised as IS-Net expects.

    `image` is (H, W, 3) uint8 RGB. Pixels outside the image are grey (0 after normalising).
    """
    height, width = image.shape[:2]
    out = np.zeros((size, size, 3), dtype=np.float32)
    ix0, iy0 = max(window.x0, 0), max(window.y0, 0)
    ix1, iy1 = min(window.x1, width), min(window.y1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    sx, sy = size / window.width, size / window.height
    cx0 = round((ix0 - window.x0) * sx)
    cy0 = round((iy0 - window.y0) * sy)
    cx1 = max(cx0 + 1, round((ix1 - window.x0) * sx))
    cy1 = max(cy0 + 1, round((iy1 - window.y0) * sy))
    part = image[iy0:iy1, ix0:ix1]
    shrinking = (cx1 - cx0) < part.shape[1] and (cy1 - cy0) < part.shape[0]
    resized = cv2.resize(
        part,
        (cx1 - cx0, cy1 - cy0),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    out[cy0:cy1, cx0:cx1] = resized.astype(np.float32) / 255.0 - 0.5
    return out


@dataclass(frozen=True, eq=False)
class ProbMap:
    """The network's foreground probability over a window: `prob` (S, S) float32 in [0, 1]."""

    prob: np.ndarray
    window: Window

    def region(self, x0: int, y0: int, x1: int, y1: int, scale: float = 1.0) -> np.ndarray:
        """Probabilities over image columns x0..x1-1, rows y0..y1-1, sampled every 1/`scale` px.

        Returns (round((y1-y0)*scale), round((x1-x0)*scale)) float32; 0 outside the window.
        """
        out_w = max(1, round((x1 - x0) * scale))
        out_h = max(1, round((y1 - y0) * scale))
        size_y, size_x = self.prob.shape
        # Output pixel (u, v) has its centre at image x = x0 + (u + 0.5) / scale; the map's pixel
        # centres sit at window.x0 + (i + 0.5) * window.width / size_x.
        ax = size_x / (self.window.width * scale)
        ay = size_y / (self.window.height * scale)
        bx = ((x0 - self.window.x0) * size_x / self.window.width) + 0.5 * ax - 0.5
        by = ((y0 - self.window.y0) * size_y / self.window.height) + 0.5 * ay - 0.5
        matrix = np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)
        return cv2.warpAffine(
            self.prob,
            matrix,
            (out_w, out_h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )

    def region_mask(self, x0: int, y0: int, x1: int, y1: int, scale: float = 1.0) -> np.ndarray:
        """Where `region` samples fall inside the window (bool, the same grid as `region`)."""
        out_w = max(1, round((x1 - x0) * scale))
        out_h = max(1, round((y1 - y0) * scale))
        xs = x0 + (np.arange(out_w) + 0.5) / scale
        ys = y0 + (np.arange(out_h) + 0.5) / scale
        in_x = (xs >= self.window.x0) & (xs < self.window.x1)
        in_y = (ys >= self.window.y0) & (ys < self.window.y1)
        return in_y[:, None] & in_x[None, :]


def map_scale(width: int, height: int) -> float:
    """The sampling scale at which a region's probability map is worked on (1 up to MAX_MAP_SIDE)."""
    return min(1.0, MAX_MAP_SIDE / max(width, height, 1))


def upscale_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A working-resolution bool mask enlarged to (height, width) by nearest neighbour."""
    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0


@dataclass(eq=False)
class MapCandidate:
    """A mask cut from the probability map: `grid` on the box map's working grid (bool, the
    shape of `BoxMap.prob`); its image-resolution `patch` is made when first asked for, so that
    candidates that lose the ranking never cost a mask the size of the box."""

    name: str
    grid: np.ndarray
    region: tuple[int, int, int, int]
    made: MaskPatch | None = None

    @property
    def patch(self) -> MaskPatch:
        if self.made is None:
            x0, y0, x1, y1 = self.region
            self.made = MaskPatch(upscale_mask(self.grid, x1 - x0, y1 - y0), x0, y0)
        return self.made

    @classmethod
    def of_patch(cls, name: str, patch: MaskPatch, bm: BoxMap) -> MapCandidate:
        """A candidate made at image resolution (an edit of the mask being corrected)."""
        grid = patch_in_region(patch, bm.region, bm.prob.shape) > 0.5
        return cls(name, grid, bm.region, patch)


@dataclass(eq=False)
class BoxMap:
    """The network's view of one box: the map, and its probabilities over the box region.

    `region` is the box (clipped to the image, widened to positive clicks) in whole pixels;
    `prob` covers it at `scale` (1 unless the box is larger than `MAX_MAP_SIDE`).
    """

    map: ProbMap
    region: tuple[int, int, int, int]
    scale: float
    prob: np.ndarray
    candidates: list[MapCandidate] = field(default_factory=list)


def patch_in_region(
    patch: MaskPatch, region: tuple[int, int, int, int], shape: tuple[int, ...]
) -> np.ndarray:
    """A mask patch as float32 over `region` sampled at `shape` (area-averaged when shrinking).

    The region is assembled at one byte per pixel (a whole-image box on a 12,000 x 9,000 photo
    costs as much as one of its masks), and only the grid is float.
    """
    x0, y0, x1, y1 = region
    h, w = int(shape[0]), int(shape[1])
    full = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    px0, py0 = max(patch.x, x0), max(patch.y, y0)
    px1, py1 = min(patch.x + patch.width, x1), min(patch.y + patch.height, y1)
    if px1 > px0 and py1 > py0:
        part = patch.mask[py0 - patch.y : py1 - patch.y, px0 - patch.x : px1 - patch.x]
        full[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0] = part.view(np.uint8) * np.uint8(255)
    grid: np.ndarray = full
    if full.shape != (h, w):
        grid = cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
    out: np.ndarray = grid.astype(np.float32) * np.float32(1 / 255)
    return out
