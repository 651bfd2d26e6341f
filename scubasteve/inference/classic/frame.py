"""The working window of one request: the box plus context, cut out and resized to a fixed scale.

Every generator works at the same scale, relative to the box (the box's longer side becomes
`box_side` pixels), so its behaviour does not depend on the object's size in pixels and its cost
is bounded whatever the image size. Masks come back to image resolution through a smooth
(bilinear) upsampling of the working mask, which keeps outlines smooth instead of blocky.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box


@dataclass(frozen=True)
class Frame:
    """Where the working window sits in the image and how it is scaled.

    `x0, y0, x1, y1`: the window's integer pixel bounds in the image (x1, y1 exclusive).
    `scale`: working pixels per image pixel. `size`: (width, height) of the working image.
    `box`: the prompt box in working coordinates (pixel-edge floats).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    scale_x: float
    scale_y: float
    size: tuple[int, int]
    box: Box

    @classmethod
    def around(
        cls,
        box: Box,
        width: int,
        height: int,
        *,
        box_side: int = 96,
        context: float = 0.25,
        max_upscale: float = 8.0,
    ) -> Frame:
        """A window around `box` (already clipped to the image) with `context` of its size per side.

        The context is at least 3 image pixels so that even tiny boxes get a background ring; the
        working scale maps the box's longer side to `box_side` pixels, enlarging tiny boxes at most
        `max_upscale` times (there is no detail to gain beyond that, only cost).
        """
        pad_x = max(3.0, context * max(box.width, 0.5 * box.height))
        pad_y = max(3.0, context * max(box.height, 0.5 * box.width))
        x0 = max(0, math.floor(box.x0 - pad_x))
        y0 = max(0, math.floor(box.y0 - pad_y))
        x1 = min(width, math.ceil(box.x1 + pad_x))
        y1 = min(height, math.ceil(box.y1 + pad_y))
        scale = min(box_side / max(box.width, box.height, 1e-6), max_upscale)
        ww = max(2, round((x1 - x0) * scale))
        wh = max(2, round((y1 - y0) * scale))
        sx, sy = ww / (x1 - x0), wh / (y1 - y0)
        wbox = Box((box.x0 - x0) * sx, (box.y0 - y0) * sy, (box.x1 - x0) * sx, (box.y1 - y0) * sy)
        return cls(x0, y0, x1, y1, sx, sy, (ww, wh), wbox)

    @property
    def image_width(self) -> int:
        return self.x1 - self.x0

    @property
    def image_height(self) -> int:
        return self.y1 - self.y0

    def cut(self, image: np.ndarray, level_scale: float = 1.0) -> np.ndarray:
        """The window resampled to the working size.

        `image` is the full image, or a downscaled copy of it (`level_scale` of its size, from the
        per-image pyramid) when the window shrinks a lot: resampling then reads far fewer pixels and
        does not alias. Bilinear sampling with an exact pixel-centre mapping.
        """
        f = level_scale
        ax, ay = f / self.scale_x, f / self.scale_y
        bx = (self.x0 + 0.5 / self.scale_x) * f - 0.5
        by = (self.y0 + 0.5 / self.scale_y) * f - 0.5
        matrix = np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)
        return cv2.warpAffine(
            image,
            matrix,
            self.size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def box_mask(self) -> np.ndarray:
        """(h, w) bool: working pixels whose centres lie inside the box."""
        w, h = self.size
        rows, cols = self.box.pixel_slices(w, h)
        m = np.zeros((h, w), dtype=bool)
        m[rows, cols] = True
        return m

    def to_working(self, x: float, y: float) -> tuple[float, float]:
        """Image coordinates to working coordinates."""
        return (x - self.x0) * self.scale_x, (y - self.y0) * self.scale_y

    def to_patch(
        self, soft: np.ndarray, threshold: float = 0.5, guide: np.ndarray | None = None
    ) -> MaskPatch:
        """A working-resolution mask (bool, or float in 0..1) as an image-resolution `MaskPatch`.

        The mask is upsampled bilinearly and thresholded, so the outline is smooth; the patch is
        cropped to the set pixels. Only the mask's own bounding box is resampled, in 8 bits, so
        that a large object on a huge image costs what its patch costs and no more. With `guide`
        (the full (H, W, 3) uint8 image) an enlarged outline is snapped to the image's own edges
        by a guided filter (`snap_to_edges`), so it follows the object at image resolution
        instead of the working grid.
        """
        m = np.clip(np.asarray(soft, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        wx, wy, ww, wh = cv2.boundingRect(m)
        if ww == 0 or wh == 0:
            return MaskPatch(np.zeros((1, 1), dtype=bool), self.x0, self.y0)
        level = int(threshold * 255)
        if self.scale_x > 1.0 or self.scale_y > 1.0:
            # Working was enlarged, so the window is small at image resolution: shrink it whole.
            full = cv2.resize(
                m, (self.image_width, self.image_height), interpolation=cv2.INTER_AREA
            )
            if not (full > level).any():  # a sliver thinner than one image pixel: keep its core
                level = max(0, int(full.max()) - 1)
            ox, oy = self.x0, self.y0
        else:
            # Enlarge only the mask's bounding box (plus a working pixel for the blur).
            h, w = m.shape
            pad = 2 if guide is not None else 1
            c0, r0 = max(0, wx - pad), max(0, wy - pad)
            c1, r1 = min(w, wx + ww + pad), min(h, wy + wh + pad)
            ox = self.x0 + round(c0 / self.scale_x)
            oy = self.y0 + round(r0 / self.scale_y)
            size = (
                max(1, min(self.x1, self.x0 + round(c1 / self.scale_x)) - ox),
                max(1, min(self.y1, self.y0 + round(r1 / self.scale_y)) - oy),
            )
            full = cv2.resize(m[r0:r1, c0:c1], size, interpolation=cv2.INTER_LINEAR)
            enlarge = 1.0 / min(self.scale_x, self.scale_y)
            if guide is not None and enlarge >= SNAP_FROM and size[0] * size[1] <= SNAP_MAX_PIXELS:
                region = guide[oy : oy + size[1], ox : ox + size[0]]
                full = snap_to_edges(full, region, enlarge)
        # In place: on a huge object `full` is as large as its patch, and a second copy would
        # double the request's peak memory.
        binary = cv2.threshold(full, level, 1, cv2.THRESH_BINARY, dst=full)[1]
        bx, by, bw, bh = cv2.boundingRect(binary)
        if bw == 0 or bh == 0:
            return MaskPatch(np.zeros((1, 1), dtype=bool), self.x0, self.y0)
        tight = binary[by : by + bh, bx : bx + bw].view(bool)
        if tight.shape != binary.shape:  # a view would keep the larger array alive
            tight = tight.copy()
        return MaskPatch(tight, ox + bx, oy + by)


#: Enlargement (image pixels per working pixel) from which outlines are snapped to image edges.
SNAP_FROM = 1.5
#: Largest patch (image pixels) snapped; beyond it (huge objects on huge images) the cost of the
#: filter outweighs what a person sees at any zoom that shows the whole object.
SNAP_MAX_PIXELS = 4_000_000
#: Guided-filter regularisation (on 0..1 grey levels): lower follows weaker edges.
SNAP_EPS = 2e-3


def snap_to_edges(soft: np.ndarray, image: np.ndarray, enlarge: float) -> np.ndarray:
    """An upsampled soft mask (h, w) uint8 0..255 moved onto the edges of `image` (h, w, 3) uint8.

    A guided filter (He et al., 2010) with the image's grey levels as guide: within a window of
    about two working pixels, the mask becomes a linear function of the image's brightness, so the
    blurred band that upsampling leaves around the outline is cut where the image itself changes.
    Returns uint8 0..255 of the same shape.
    """
    if soft.shape[:2] != image.shape[:2] or min(soft.shape[:2]) < 3:
        return soft
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    p = soft.astype(np.float32) / 255.0
    r = max(1, round(enlarge))
    k = (2 * r + 1, 2 * r + 1)

    def mean(a: np.ndarray) -> np.ndarray:
        return np.asarray(cv2.boxFilter(a, -1, k, borderType=cv2.BORDER_REFLECT))

    mi, mp = mean(grey), mean(p)
    a = (mean(grey * p) - mi * mp) / (mean(grey * grey) - mi * mi + SNAP_EPS)
    b = mp - a * mi
    q: np.ndarray = mean(a) * grey + mean(b)
    return np.clip(q * 255.0 + 0.5, 0, 255).astype(np.uint8)
