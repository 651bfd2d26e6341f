"""Detected instances: the `Instance` type, its two masks, and turning Mask R-CNN output into instances.

No TensorFlow here: `unmold_detections` works on the network's raw numpy output, pasting each 28x28
mask into its own box-local `MaskPatch` (PixelLib's `detect` pastes every mask into a full-image
array, which costs gigabytes on large images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scubasteve.core.annotation import Annotation, MaskPatch
from scubasteve.core.geometry import Box, Polygon
from scubasteve.inference.base import Proposal

SOURCE = "pixellib"
#: Key of `Annotation.extra` (a LabelMe shape key) holding the chosen mask's origin and the other mask.
MASKS_KEY = "scubasteve_masks"
#: A network mask pixel belongs to the object at or above this probability (PixelLib's threshold).
MASK_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class Instance:
    """One detected object.

    `box`: XYXY pixel-edge box of the detection. `patch`: PixelLib's mask (box-local bool array and
    offset). `refined`: an alternative mask for the same object from a mask-proposal engine, set by
    `refine.refine_instances`; `refined_iou` is its IoU with PixelLib's mask. Both masks are
    kept so that a user (or the GUI) can choose: `annotation("pixellib")` or `annotation("refined")`.
    """

    label: str
    class_id: int
    score: float
    box: Box
    patch: MaskPatch
    refined: Proposal | None = None
    refined_iou: float | None = None

    def mask_for(self, choice: str = "pixellib") -> MaskPatch:
        if choice == "pixellib":
            return self.patch
        if choice == "refined":
            if self.refined is None:
                raise ValueError("this instance has no refined mask")
            return self.refined.patch
        raise ValueError(f"choice must be 'pixellib' or 'refined', got {choice!r}")

    def annotation(self, choice: str = "pixellib") -> Annotation:
        """The instance as an `Annotation` with the chosen mask; its source is always "pixellib".

        When the instance was refined, the mask not chosen travels along in
        `extra[MASKS_KEY]` (as polygons), so that the choice can be reversed later with
        `swap_alternative`, in the GUI or after reading the LabelMe file back.
        """
        chosen = self.mask_for(choice)
        extra: dict[str, Any] = {}
        if self.refined is not None:
            other = "refined" if choice == "pixellib" else "pixellib"
            extra[MASKS_KEY] = {
                "chosen": self._mask_source(choice),
                "refined_iou": None if self.refined_iou is None else round(self.refined_iou, 4),
                "alternatives": [
                    {
                        "source": self._mask_source(other),
                        "polygons": polygons_to_json(self.mask_for(other).to_polygons()),
                    }
                ],
            }
        return Annotation.from_mask(
            self.label, chosen, source=SOURCE, score=float(self.score), extra=extra
        )

    def _mask_source(self, choice: str) -> str:
        if choice == "refined" and self.refined is not None:
            return self.refined.source
        return SOURCE


def polygons_to_json(polygons: Sequence[Polygon]) -> list[list[list[list[float]]]]:
    """Polygons as JSON lists: one list of rings per polygon (exterior first, then holes)."""
    return [
        [
            [[round(float(x), 3), round(float(y), 3)] for x, y in ring]
            for ring in (p.exterior, *p.holes)
        ]
        for p in polygons
    ]


def polygons_from_json(data: Any) -> tuple[Polygon, ...]:
    return tuple(
        Polygon(
            np.asarray(rings[0], dtype=np.float64),
            tuple(np.asarray(h, dtype=np.float64) for h in rings[1:]),
        )
        for rings in data
    )


def alternatives(annotation: Annotation) -> list[dict[str, Any]]:
    """The other masks stored with an annotation: dicts with "source" and "polygons"."""
    info = annotation.extra.get(MASKS_KEY)
    if not isinstance(info, dict):
        return []
    return [a for a in info.get("alternatives") or [] if isinstance(a, dict) and a.get("polygons")]


def swap_alternative(annotation: Annotation, index: int = 0) -> Annotation:
    """The annotation with its outline and its stored alternative `index` exchanged."""
    alts = alternatives(annotation)
    if not 0 <= index < len(alts):
        raise ValueError("this annotation has no such alternative mask")
    info = dict(annotation.extra[MASKS_KEY])
    current = {
        "source": info.get("chosen", annotation.source),
        "polygons": polygons_to_json(annotation.polygons),
    }
    info["chosen"] = alts[index].get("source", SOURCE)
    info["alternatives"] = [current if i == index else a for i, a in enumerate(alts)]
    extra = {**annotation.extra, MASKS_KEY: info}
    polygons = polygons_from_json(alts[index]["polygons"])
    return replace(annotation, polygons=polygons, mask=None, extra=extra)


def _norm_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    # Mask R-CNN's convention: in pixels (y2, x2) lies outside the box, normalised it lies inside.
    scale = np.array([height - 1, width - 1, height - 1, width - 1], dtype=np.float64)
    normalised: np.ndarray = (np.asarray(boxes, dtype=np.float64) - np.array([0, 0, 1, 1])) / scale
    return normalised


def _denorm_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    scale = np.array([height - 1, width - 1, height - 1, width - 1], dtype=np.float64)
    pixels: np.ndarray = np.asarray(boxes, dtype=np.float64) * scale + np.array([0, 0, 1, 1])
    return np.around(pixels).astype(int)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a small float mask to (height, width), zero outside its edge.

    Outside the network's mask counts as background (as in PixelLib's resize), so the outermost
    pixels of a box are pulled towards 0 rather than copying the edge.
    """
    import cv2

    sy, sx = height / mask.shape[0], width / mask.shape[1]
    # Pixel centres map as (x + 0.5) * s - 0.5: the same alignment as cv2.resize and skimage.
    matrix = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]], dtype=np.float64)
    return cv2.warpAffine(
        mask.astype(np.float32),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


#: Boxes larger than this (pixels) get their mask in bands of rows (`mask_in_box`).
BAND_PIXELS = 1 << 22


def mask_in_box(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """The network's small float mask resized to a (height, width) box and thresholded: bool.

    A box larger than `BAND_PIXELS` (a large object seen in a whole 12,000 x 9,000 image shrunk,
    for tiling) is resized in bands of rows, so that its float32 copy is never whole (it would be
    four times the mask); the same sampling, row band by row band.
    """
    if height * width <= BAND_PIXELS:
        return resize_mask(mask, height, width) >= MASK_THRESHOLD
    import cv2

    sy, sx = height / mask.shape[0], width / mask.shape[1]
    out = np.empty((height, width), dtype=bool)
    rows = max(1, BAND_PIXELS // width)
    small = mask.astype(np.float32)
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        # Output row r of the band is row r0 + r of the box: shift the map up by r0.
        matrix = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5 - r0]], np.float64)
        band = cv2.warpAffine(
            small,
            matrix,
            (width, r1 - r0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        out[r0:r1] = band >= MASK_THRESHOLD
    return out


def unmold_detections(
    detections: np.ndarray,
    masks: np.ndarray,
    molded_shape: Sequence[int],
    window: Sequence[int] | np.ndarray,
    image_size: tuple[int, int],
    class_names: Sequence[str],
    min_score: float = 0.0,
    classes: frozenset[str] | None = None,
) -> list[Instance]:
    """Raw Mask R-CNN output for one image -> `Instance`s in image pixels, best score first.

    `detections`: (N, 6) float rows y1, x1, y2, x2 (normalised to the molded input), class id, score;
    rows with class id 0 pad the end. `masks`: (N, m, m, classes) float mask probabilities.
    `molded_shape`: (H', W', 3) of the network input; `window`: y1, x1, y2, x2 of the image inside it
    (the rest is padding). `image_size`: (height, width) of the original image. `class_names`:
    without the background. Detections under `min_score` or not in `classes` are dropped.
    """
    height, width = image_size
    ends = np.flatnonzero(detections[:, 4] == 0)
    n = int(ends[0]) if ends.size else int(detections.shape[0])
    wy1, wx1, wy2, wx2 = _norm_boxes(np.asarray(window), molded_shape[0], molded_shape[1])
    shift = np.array([wy1, wx1, wy1, wx1])
    scale = np.array([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
    found: list[Instance] = []
    for i in range(n):
        class_id, score = int(detections[i, 4]), float(detections[i, 5])
        if score < min_score or not 0 < class_id <= len(class_names):
            continue
        label = class_names[class_id - 1]
        if classes is not None and label not in classes:
            continue
        y1, x1, y2, x2 = _denorm_boxes((detections[i, :4] - shift) / scale, height, width)
        y1, x1, y2, x2 = max(y1, 0), max(x1, 0), min(y2, height), min(x2, width)
        if y2 <= y1 or x2 <= x1:
            continue
        local = mask_in_box(masks[i, :, :, class_id], y2 - y1, x2 - x1)
        if not local.any():
            continue
        found.append(
            Instance(label, class_id, score, Box(x1, y1, x2, y2), MaskPatch(local, x1, y1))
        )
    found.sort(key=lambda inst: inst.score, reverse=True)
    return found
