"""Training samples for IS-Net: box crops made exactly as the engine makes them.

For one object: the prompt box is its true box grown by a random share of its size on each side
(0-10 %, as a user's loose drag), the crop is that box grown by the engine's context and resampled
to the training input size (`inference/isnet/crops.py`, the engine's own functions), and the target
is that object's mask alone over the same window, so the network learns that the boxed object is
the answer, not the most salient thing in the crop. Augmentation keeps the box's meaning:
horizontal flips and mild brightness, contrast and colour changes; no rotation or cropping that
would move the box.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from scubasteve.core.annotation import ImageDoc, MaskPatch
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.inference.isnet.crops import Window, extract


@dataclass(frozen=True)
class BoxObject:
    """One training object: its image (index into the documents) and its mask."""

    doc: int
    patch: MaskPatch


def box_objects(docs: Sequence[ImageDoc], min_area: int = 16) -> list[BoxObject]:
    """Every usable object of `docs`: area shapes of at least `min_area` pixels, no crowds."""
    out: list[BoxObject] = []
    for d, doc in enumerate(docs):
        for ann in doc.annotations:
            if ann.extra.get("iscrowd") or not ann.has_area:
                continue
            patch = MaskPatch.from_full(ann.to_mask(doc.height, doc.width))
            if patch.area >= min_area:
                out.append(BoxObject(d, patch))
    return out


def grown_box(patch: MaskPatch, shares: Sequence[float], width: int, height: int) -> Box:
    """The object's true box grown by `shares` (left, top, right, bottom) of its size, clipped."""
    b = patch.box()
    w, h = b.width, b.height
    left, top, right, bottom = shares
    grown = Box(b.x0 - left * w, b.y0 - top * h, b.x1 + right * w, b.y1 + bottom * h)
    return grown.clip(width, height)


class BoxCrops:
    """Makes (input, target) pairs for objects; keeps a bounded cache of decoded images."""

    def __init__(
        self,
        docs: Sequence[ImageDoc],
        input_size: int,
        context: float,
        grow: tuple[float, float] = (0.0, 0.10),
        cache_images: int = 64,
    ) -> None:
        if input_size < 32:
            raise InputError(f"the training input size must be at least 32 px, got {input_size}")
        self.docs = list(docs)
        self.input_size = input_size
        self.context = context
        self.grow = grow
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_images

    def image(self, d: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of document `d`, at the document's size."""
        if d in self._cache:
            self._cache.move_to_end(d)
            return self._cache[d]
        doc = self.docs[d]
        try:
            pixels = doc.pixels()
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load the image: {exc}", doc.path) from exc
        if pixels.shape[:2] != (doc.height, doc.width):
            pixels = cv2.resize(pixels, (doc.width, doc.height), interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(pixels[:, :, :3])
        self._cache[d] = image
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return image

    def sample(
        self, obj: BoxObject, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(input (S, S, 3) float32 normalised, target (S, S) float32 in [0, 1]) for one object.

        Without `rng` the box is grown 5 % per side and nothing is augmented (validation).
        """
        image = self.image(obj.doc)
        height, width = image.shape[:2]
        if rng is None:
            shares: Sequence[float] = (0.05, 0.05, 0.05, 0.05)
        else:
            shares = rng.uniform(*self.grow, size=4).tolist()
        box = grown_box(obj.patch, shares, width, height)
        window = Window.around(box, self.context)
        x = extract(image, window, self.input_size)
        target = _mask_in_window(obj.patch, window, self.input_size)
        if rng is not None:
            if rng.random() < 0.5:
                x, target = x[:, ::-1], target[:, ::-1]
            x = _colour_jitter(x, rng)
        return np.ascontiguousarray(x), np.ascontiguousarray(target)


def _mask_in_window(patch: MaskPatch, window: Window, size: int) -> np.ndarray:
    """The object's mask resampled over the window like the image (area-weighted, in [0, 1])."""
    local = np.zeros((window.height, window.width), np.float32)
    x0, y0 = max(patch.x, window.x0), max(patch.y, window.y0)
    x1 = min(patch.x + patch.width, window.x1)
    y1 = min(patch.y + patch.height, window.y1)
    if x1 > x0 and y1 > y0:
        local[y0 - window.y0 : y1 - window.y0, x0 - window.x0 : x1 - window.x0] = patch.mask[
            y0 - patch.y : y1 - patch.y, x0 - patch.x : x1 - patch.x
        ]
    shrinking = window.width > size and window.height > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(local, (size, size), interpolation=interp)


def _colour_jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild brightness, contrast and per-channel changes of a normalised crop."""
    contrast = rng.uniform(0.8, 1.2)
    brightness = rng.uniform(-0.08, 0.08)
    channels = rng.uniform(-0.04, 0.04, size=3).astype(np.float32)
    out = (x * contrast + brightness + channels).astype(np.float32)
    return np.clip(out, -0.5, 0.5)
