"""Tiled detection: Mask R-CNN on overlapping tiles of a large image plus the whole image shrunk.

PixelLib resizes every image to the network's input (1024, 512, 384 or 256 px on its longer
side), so on a 12,000 x 9,000 photo an object of 100 px becomes 8 px and is lost. An image larger
than a threshold is therefore shown to the network as several views (ADR 0409): the whole image
shrunk to the input (large objects, seen whole) and overlapping tiles of about a photo's size
(`AUTO_TILE` px, `OVERLAP` of their side shared with each neighbour), each of which the network
sees as it sees a normal photo at the chosen speed. Detections come back at full resolution as
box-local `MaskPatch`es (the segmenter unmolds each 28x28 mask straight to the view's size in the
image), shifted to image pixels, and are merged:

* a detection whose box reaches an inner edge of its tile is a piece of a cut object; pieces of
  one label that agree where their tiles overlap are joined into one instance;
* the other detections are whole; of whole detections of one label that overlap (mask IoU above
  `DUPLICATE_IOU`) the one from a tile (the finer view) is kept, then the higher score;
* a joined piece is dropped when a kept detection of its label holds it (IoU above
  `DUPLICATE_IOU`, or `HELD` of the piece inside it): the object was found whole elsewhere; but
  when that detection is the whole image's and agrees with the joined pieces closely (IoU above
  `JOINED_IOU`), the pieces' finer outline replaces its coarse one.

The views run one after another on the segmenter's thread, the next queued while the current
one's detections are placed, so a run reports progress per view and stops between views. No
TensorFlow and no full-image mask here: every mask is a patch the size of its object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.core.progress import Progress
from scubasteve.inference.base import patch_intersection
from scubasteve.inference.maskrcnn.instances import Instance

#: `--tile`: "auto" (tile images larger than `AUTO_FROM` px), "off", or a tile side in pixels.
TileSetting = Literal["auto", "off"] | int
AUTO: Literal["auto"] = "auto"
OFF: Literal["off"] = "off"
#: The tile side of "auto": about a normal photo, which each tile then stands in for.
AUTO_TILE = 1024
#: "auto" tiles an image whose longer side is more than this (a 4,032 x 3,024 phone photo is not
#: tiled, a 6,000 x 4,000 one is: below it the whole image keeps objects at a quarter of their
#: size or more, and tiling would multiply the time by the number of tiles).
AUTO_FROM = 4 * AUTO_TILE
#: Smallest tile side accepted (the network's smallest input).
MIN_TILE = 64
#: Neighbouring tiles share at least this fraction of their side.
OVERLAP = 0.2
#: A detection box within this many network pixels of an inner tile edge is cut by it.
EDGE_MARGIN = 2.0
#: Detections of one label are the same object above this mask IoU.
DUPLICATE_IOU = 0.5
#: A piece of a cut object is part of a kept detection when this share of it lies inside it.
HELD = 0.7
#: Joined pieces replace the whole image's detection of their object (a finer outline, from
#: tiles at full resolution) when the two agree this much (IoU).
JOINED_IOU = 0.8
#: Pieces of two tiles are one object when their masks agree this much (IoU) where the tiles
#: overlap.
PIECE_IOU = 0.3
#: PixelLib's resizing makes empty inputs of thinner images.
MIN_IMAGE_SIDE = 2


class ViewDetector(Protocol):
    """What tiling needs of the segmenter (`InstanceSegmenter`)."""

    speed: int  # the network input's longer side

    def detect_async(
        self, rgb: np.ndarray, size: tuple[int, int] | None = None
    ) -> Future[list[Instance]]:
        """Detections in `rgb`, reported in pixels of a (height, width) `size` image of which
        `rgb` is a resized copy (None: `rgb`'s own size)."""
        ...


def parse_tile(value: object) -> TileSetting:
    """ "auto", "off" or a tile side of at least `MIN_TILE` px (InputError otherwise)."""
    text = str(value).strip().lower()
    if text in (AUTO, OFF):
        return AUTO if text == AUTO else OFF
    try:
        side = int(text)
    except ValueError:
        side = 0
    if side < MIN_TILE:
        raise InputError(
            f"the tile setting must be auto, off or a tile side of at least {MIN_TILE} pixels, "
            f"got {value!r}"
        )
    return side


def check_image_size(width: int, height: int, path: str | Path | None = None) -> None:
    """InputError when PixelLib cannot use an image this small (in either direction)."""
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InputError(
            f"PixelLib needs an image of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels, "
            f"got {width}x{height}",
            path,
        )


@dataclass(frozen=True)
class View:
    """Image columns x0..x1-1 and rows y0..y1-1, shown to the network as `size` (width, height)
    pixels (smaller when the region is shrunk). `whole`: the view is the whole image."""

    x0: int
    y0: int
    x1: int
    y1: int
    size: tuple[int, int]
    whole: bool = False

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def resized(self) -> bool:
        return self.size != (self.width, self.height)

    def pixels(self, rgb: np.ndarray) -> np.ndarray:
        """The view's pixels ((h, w, 3) uint8, `size`), shrunk by area averaging if need be."""
        region = rgb[self.y0 : self.y1, self.x0 : self.x1]
        if not self.resized:
            return region
        return np.asarray(cv2.resize(region, self.size, interpolation=cv2.INTER_AREA))


def tile_side(width: int, height: int, tile: TileSetting) -> int | None:
    """The tile side (image px) for an image of this size, None when it is not tiled."""
    longest = max(width, height)
    if tile == OFF:
        return None
    if tile == AUTO:
        return AUTO_TILE if longest > AUTO_FROM else None
    return int(tile) if longest > int(tile) else None


def _shown(width: int, height: int, longest: int) -> tuple[int, int]:
    """(width, height) of a region shrunk so that its longer side is at most `longest`."""
    scale = min(1.0, longest / max(width, height))
    return max(MIN_IMAGE_SIDE, round(width * scale)), max(MIN_IMAGE_SIDE, round(height * scale))


def _starts(length: int, side: int) -> list[int]:
    """Tile starts along an axis: evenly spaced, each tile `side` long, overlapping >= OVERLAP."""
    if length <= side:
        return [0]
    step = side - math.ceil(OVERLAP * side)
    n = math.ceil((length - side) / step) + 1
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


def plan_views(width: int, height: int, input_side: int, tile: TileSetting = AUTO) -> list[View]:
    """The views an image is detected in: one (the image) when it is not tiled, else the whole
    image shrunk to `input_side` followed by the tiles, row by row.

    An untiled image larger than `AUTO_FROM` is shrunk here too (by area averaging): PixelLib's
    own resizing works in float64 and takes gigabytes and seconds on such images. Smaller untiled
    images go to PixelLib unchanged. InputError for an image PixelLib cannot use (thinner than
    `MIN_IMAGE_SIDE`).
    """
    check_image_size(width, height)
    side = tile_side(width, height, tile)
    if side is None:
        longest = input_side if max(width, height) > AUTO_FROM else max(width, height)
        return [View(0, 0, width, height, _shown(width, height, longest), whole=True)]
    views = [View(0, 0, width, height, _shown(width, height, input_side), whole=True)]
    for y in _starts(height, side):
        for x in _starts(width, side):
            x1, y1 = min(width, x + side), min(height, y + side)
            views.append(View(x, y, x1, y1, _shown(x1 - x, y1 - y, input_side)))
    return views


@dataclass(frozen=True, eq=False)
class Found:
    """A detection in image pixels, the view it came from, and whether a tile edge cuts it."""

    instance: Instance
    view: View
    cut: bool


def place(instance: Instance, view: View, width: int, height: int) -> Found:
    """A detection of `view` (in the view's image-resolution pixels) moved to image pixels."""
    box = instance.box
    moved = Box(box.x0 + view.x0, box.y0 + view.y0, box.x1 + view.x0, box.y1 + view.y0)
    patch = MaskPatch(instance.patch.mask, instance.patch.x + view.x0, instance.patch.y + view.y0)
    placed = Instance(instance.label, instance.class_id, instance.score, moved, patch)
    if view.whole:
        return Found(placed, view, cut=False)
    margin = EDGE_MARGIN * max(view.width / view.size[0], view.height / view.size[1], 1.0)
    cut = (
        (view.x0 > 0 and moved.x0 <= view.x0 + margin)
        or (view.y0 > 0 and moved.y0 <= view.y0 + margin)
        or (view.x1 < width and moved.x1 >= view.x1 - margin)
        or (view.y1 < height and moved.y1 >= view.y1 - margin)
    )
    return Found(placed, view, cut)


def detect_views(
    segmenter: ViewDetector,
    rgb: np.ndarray,
    views: Sequence[View],
    *,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> list[Instance]:
    """Detect each view of `rgb` ((H, W, 3) uint8) and merge the detections; best score first.

    `progress(done, len(views))` after each view; `cancel` stops between views with `Cancelled`
    (the view running on the network's thread finishes there; nothing is returned).
    """
    height, width = rgb.shape[:2]
    found: list[Found] = []
    pending: Future[list[Instance]] | None = _submit(segmenter, rgb, views[0]) if views else None
    try:
        for index, view in enumerate(views):
            raise_if_cancelled(cancel)  # this view, already queued, is dropped (finally)
            current = pending
            pending = _submit(segmenter, rgb, views[index + 1]) if index + 1 < len(views) else None
            assert current is not None  # queued by the previous step
            found.extend(place(inst, view, width, height) for inst in current.result())
            if progress is not None:
                progress(index + 1, len(views))
    finally:
        if pending is not None:
            pending.cancel()  # a cancel: the queued view is dropped if it has not started
    return merge(found)


def _submit(segmenter: ViewDetector, rgb: np.ndarray, view: View) -> Future[list[Instance]]:
    pixels = view.pixels(rgb)
    if view.resized:
        return segmenter.detect_async(pixels, size=(view.height, view.width))
    return segmenter.detect_async(pixels)


# --- merging ------------------------------------------------------------------------------------


class _Kept:
    """Kept detections with their patches' boxes in one array, for finding those a box touches.
    `coarse[i]`: item i came from the whole image shrunk."""

    def __init__(self) -> None:
        self.items: list[Instance] = []
        self.coarse: list[bool] = []
        self._boxes = np.zeros((64, 4), dtype=np.float64)  # grows by doubling

    def add(self, inst: Instance, coarse: bool) -> None:
        if len(self.items) == len(self._boxes):
            self._boxes = np.concatenate([self._boxes, np.zeros_like(self._boxes)])
        self._boxes[len(self.items)] = _extent(inst.patch)
        self.items.append(inst)
        self.coarse.append(coarse)

    def replace(self, index: int, inst: Instance) -> None:
        self.items[index], self.coarse[index] = inst, False
        self._boxes[index] = _extent(inst.patch)

    def touching(self, inst: Instance) -> list[int]:
        """Indices of kept detections of `inst`'s label whose patches overlap its patch's box."""
        x0, y0, x1, y1 = _extent(inst.patch)
        k = self._boxes[: len(self.items)]
        hit = (k[:, 0] < x1) & (k[:, 2] > x0) & (k[:, 1] < y1) & (k[:, 3] > y0)
        return [int(i) for i in np.flatnonzero(hit) if self.items[i].label == inst.label]


def merge(found: Sequence[Found]) -> list[Instance]:
    """The instances of an image from its views' detections (module docstring), best first."""
    kept = _Kept()
    whole = [f for f in found if not f.cut and f.instance.patch.area]
    # Tiles before the whole image (they saw the object at a finer scale), then by score.
    for f in sorted(whole, key=lambda f: (f.view.whole, -f.instance.score)):
        near = kept.touching(f.instance)
        if not any(_iou(f.instance, kept.items[i]) > DUPLICATE_IOU for i in near):
            kept.add(f.instance, f.view.whole)
    for piece in join_pieces([f for f in found if f.cut and f.instance.patch.area]):
        holder = next((i for i in kept.touching(piece) if _holds(kept.items[i], piece)), None)
        if holder is None:
            kept.add(piece, False)
        elif kept.coarse[holder] and _iou(piece, kept.items[holder]) > JOINED_IOU:
            coarse = kept.items[holder]
            kept.replace(holder, replace(piece, score=coarse.score))
    return sorted(kept.items, key=lambda inst: inst.score, reverse=True)


def _iou(a: Instance, b: Instance) -> float:
    inter = patch_intersection(a.patch, b.patch)
    union = a.patch.area + b.patch.area - inter
    return inter / union if union else 0.0


def _holds(whole: Instance, piece: Instance) -> bool:
    inter = patch_intersection(whole.patch, piece.patch)
    union = whole.patch.area + piece.patch.area - inter
    return inter > HELD * piece.patch.area or (union > 0 and inter / union > DUPLICATE_IOU)


def join_pieces(pieces: Sequence[Found]) -> list[Instance]:
    """Pieces of cut objects joined across tiles: one instance per group of pieces of one label
    whose masks agree (IoU > PIECE_IOU) where their tiles overlap."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxes = np.array([_extent(p.instance.patch) for p in pieces], dtype=np.float64).reshape(-1, 4)
    for i, a in enumerate(pieces):
        b = boxes[i]
        near = (
            (boxes[:, 0] < b[2])
            & (boxes[:, 2] > b[0])
            & (boxes[:, 1] < b[3])
            & (boxes[:, 3] > b[1])
        )
        for j in (int(n) + i + 1 for n in np.flatnonzero(near[i + 1 :])):
            other = pieces[j]
            if other.view is a.view or other.instance.label != a.instance.label:
                continue
            if _agree(a, other):
                parent[root(i)] = root(j)
    groups: dict[int, list[Instance]] = {}
    for i, p in enumerate(pieces):
        groups.setdefault(root(i), []).append(p.instance)
    return [_joined(g) for g in groups.values()]


def _extent(patch: MaskPatch) -> tuple[int, int, int, int]:
    return patch.x, patch.y, patch.x + patch.width, patch.y + patch.height


def _agree(a: Found, b: Found) -> bool:
    """Whether two pieces are one object: their masks agree where both tiles saw the image."""
    x0, y0 = max(a.view.x0, b.view.x0), max(a.view.y0, b.view.y0)
    x1, y1 = min(a.view.x1, b.view.x1), min(a.view.y1, b.view.y1)
    ma, mb = _window(a.instance.patch, x0, y0, x1, y1), _window(b.instance.patch, x0, y0, x1, y1)
    if ma is None or mb is None:
        return False
    inter = patch_intersection(ma, mb)
    union = ma.area + mb.area - inter
    return union > 0 and inter / union > PIECE_IOU


def _window(patch: MaskPatch, x0: int, y0: int, x1: int, y1: int) -> MaskPatch | None:
    """The part of a patch inside image columns x0..x1-1, rows y0..y1-1 (None: nothing set)."""
    px0, py0 = max(patch.x, x0), max(patch.y, y0)
    px1, py1 = min(patch.x + patch.width, x1), min(patch.y + patch.height, y1)
    if px1 <= px0 or py1 <= py0:
        return None
    part = patch.mask[py0 - patch.y : py1 - patch.y, px0 - patch.x : px1 - patch.x]
    return MaskPatch(part, px0, py0) if part.any() else None


def _joined(parts: list[Instance]) -> Instance:
    """One instance covering `parts` (the best part's label, class and score)."""
    best = max(parts, key=lambda p: p.score)
    if len(parts) == 1:
        return best
    x0 = min(p.patch.x for p in parts)
    y0 = min(p.patch.y for p in parts)
    x1 = max(p.patch.x + p.patch.width for p in parts)
    y1 = max(p.patch.y + p.patch.height for p in parts)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for p in parts:
        mask[p.patch.y - y0 : p.patch.y - y0 + p.patch.height,
             p.patch.x - x0 : p.patch.x - x0 + p.patch.width] |= p.patch.mask  # fmt: skip
    box = Box(
        min(p.box.x0 for p in parts),
        min(p.box.y0 for p in parts),
        max(p.box.x1 for p in parts),
        max(p.box.y1 for p in parts),
    )
    return Instance(best.label, best.class_id, best.score, box, MaskPatch(mask, x0, y0))


def detect_image(
    segmenter: ViewDetector,
    rgb: np.ndarray,
    tile: TileSetting = AUTO,
    *,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> list[Instance]:
    """Instances in one image, tiled as `tile` says (`plan_views`), best score first."""
    height, width = rgb.shape[:2]
    views = plan_views(width, height, segmenter.speed, tile)
    if len(views) == 1 and not views[0].resized:
        return segmenter.detect_async(rgb).result()
    return detect_views(segmenter, rgb, views, cancel=cancel, progress=progress)
