"""Annotations and image documents: plain, typed data.

An `Annotation` is immutable; editing means replacing it with a changed copy (`dataclasses.replace`),
which is what makes the undo commands in `commands.py` small and safe.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.geometry import (
    DEFAULT_TOLERANCE,
    Box,
    Polygon,
    mask_bbox,
    mask_to_polygons,
    polygons_bounds,
    polygons_to_mask,
)

#: Where an annotation came from. Free strings are allowed; these are the ones the program writes.
SOURCES = ("manual", "classic", "deepmask", "sharpmask", "sam2", "pixellib", "imported")

#: LabelMe shape types that enclose an area (and so become polygons or masks for training).
AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
#: LabelMe shape types without an area; kept as drawn so that nothing the user made is lost.
OPEN_SHAPES = ("line", "linestrip", "point", "points")
SHAPE_TYPES = AREA_SHAPES + OPEN_SHAPES

#: Flag set on pre-annotations until the user accepts them (kept in the LabelMe shape's flags).
#: Unreviewed pre-annotations are left out of COCO exports and of training data.
REVIEW_FLAG = "needs_review"
#: Extra shape key of a machine-made shape that stands in for a person's rectangle until it is
#: reviewed: the rectangle's corners and source, so that rejecting the shape gives it back.
REPLACES_KEY = "scubasteve_replaces"


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, eq=False)
class MaskPatch:
    """A boolean mask covering only part of an image.

    `mask`: (h, w) bool array. `x`, `y`: image column and row of its top-left pixel.
    """

    mask: np.ndarray
    x: int = 0
    y: int = 0

    def __post_init__(self) -> None:
        if self.mask.ndim != 2:
            raise ValueError(f"mask patch must be 2-D, got shape {self.mask.shape}")
        object.__setattr__(self, "mask", np.asarray(self.mask, dtype=bool))

    @classmethod
    def from_full(cls, mask: np.ndarray) -> MaskPatch:
        """The tightest patch around the set pixels of a full-image mask (1x1 empty if none)."""
        box = mask_bbox(mask)
        if box is None:
            return cls(np.zeros((1, 1), dtype=bool), 0, 0)
        x0, y0, x1, y1 = int(box.x0), int(box.y0), int(box.x1), int(box.y1)
        return cls(mask[y0:y1, x0:x1].copy(), x0, y0)

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    def box(self) -> Box:
        return Box(self.x, self.y, self.x + self.width, self.y + self.height)

    def to_full(self, height: int, width: int) -> np.ndarray:
        """The patch pasted into an empty (height, width) mask; parts outside are cut off."""
        full = np.zeros((height, width), dtype=bool)
        y0, x0 = max(self.y, 0), max(self.x, 0)
        y1, x1 = min(self.y + self.height, height), min(self.x + self.width, width)
        if y1 > y0 and x1 > x0:
            full[y0:y1, x0:x1] = self.mask[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        return full

    def to_polygons(
        self, tolerance: float = DEFAULT_TOLERANCE, min_island: float = 0.0
    ) -> list[Polygon]:
        offset = (float(self.x), float(self.y))
        return mask_to_polygons(self.mask, tolerance, offset=offset, min_island=min_island)


@dataclass(frozen=True, eq=False)
class Annotation:
    """One object: a label and its geometry, with where it came from and what it cost.

    Area shapes keep their outline in `polygons` (pixel-edge coordinates, holes allowed, several
    parts allowed). `mask` is an optional exact mask (for example the accepted proposal).
    Rectangles, circles and open shapes also keep the `points` they were drawn with, so that a file
    read from labelme is written back as it was.
    """

    label: str
    polygons: tuple[Polygon, ...] = ()
    mask: MaskPatch | None = None
    score: float | None = None
    source: str = "manual"
    seconds: float | None = None
    flags: Mapping[str, bool] = field(default_factory=dict)
    description: str = ""
    group_id: int | None = None
    shape_type: str = "polygon"
    points: np.ndarray | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"an annotation needs a non-empty label, got {self.label!r}")
        if self.shape_type not in SHAPE_TYPES:
            raise ValueError(
                f"unknown shape type {self.shape_type!r}; known: {', '.join(SHAPE_TYPES)}"
            )
        object.__setattr__(self, "polygons", tuple(self.polygons))
        if self.score is not None and not math.isfinite(self.score):
            raise ValueError(f"score must be a finite number, got {self.score}")
        if self.points is not None:
            object.__setattr__(
                self, "points", np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
            )

    @property
    def has_area(self) -> bool:
        return self.shape_type in AREA_SHAPES and (bool(self.polygons) or self.mask is not None)

    def bounds(self) -> Box | None:
        if self.polygons:
            return polygons_bounds(self.polygons)
        if self.mask is not None:
            return self.mask.box()
        if self.points is not None and len(self.points):
            xs, ys = self.points[:, 0], self.points[:, 1]
            return Box(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
        return None

    def to_mask(self, height: int, width: int) -> np.ndarray:
        """The annotation as an (height, width) bool mask (the exact mask when there is one)."""
        if self.mask is not None:
            return self.mask.to_full(height, width)
        return polygons_to_mask(self.polygons, height, width)

    def area(self) -> float:
        if self.mask is not None:
            return float(self.mask.area)
        return float(sum(p.area for p in self.polygons))

    def with_label(self, label: str) -> Annotation:
        return replace(self, label=label)

    @property
    def needs_review(self) -> bool:
        """A machine-made shape (a pre-annotation) that no person has accepted yet (ADR 0505)."""
        return bool(self.flags.get(REVIEW_FLAG))

    def for_review(self) -> Annotation:
        """This annotation flagged as awaiting review."""
        return replace(self, flags={**self.flags, REVIEW_FLAG: True})

    def reviewed(self) -> Annotation:
        """This annotation accepted by a person: the review flag (and any rectangle it stood in
        for) removed."""
        return replace(
            self,
            flags={k: v for k, v in self.flags.items() if k != REVIEW_FLAG},
            extra={k: v for k, v in self.extra.items() if k != REPLACES_KEY},
        )

    def standing_in_for(self, rectangle: Annotation) -> Annotation:
        """This shape (a mask made from `rectangle`'s box) in the rectangle's place, awaiting
        review: same id, label, description and flags; rejecting it gives the rectangle back."""
        box = rectangle.bounds()
        if box is None:
            raise ValueError(f"the {rectangle.label} shape has no extent to stand in for")
        kept = {"points": [[box.x0, box.y0], [box.x1, box.y1]], "source": rectangle.source}
        return replace(
            self, id=rectangle.id, label=rectangle.label, description=rectangle.description,
            flags={**rectangle.flags, REVIEW_FLAG: True},
            extra={**rectangle.extra, REPLACES_KEY: kept},
        )  # fmt: skip

    def rejected(self) -> Annotation | None:
        """What rejecting this shape (N) leaves: the rectangle it stood in for, or nothing. A
        damaged record (hand-edited file) counts as nothing to give back."""
        kept = self.extra.get(REPLACES_KEY)
        if not isinstance(kept, Mapping):
            return None
        points: Any = kept.get("points")
        try:
            (x0, y0), (x1, y1) = points
            box = Box.from_points(float(x0), float(y0), float(x1), float(y1))
        except (TypeError, ValueError):
            return None
        if box.width <= 0 or box.height <= 0:
            return None
        source = kept.get("source") if isinstance(kept.get("source"), str) else "manual"
        corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
        return replace(
            self.reviewed(), polygons=(Polygon(corners),), mask=None, shape_type="rectangle",
            points=np.array([[box.x0, box.y0], [box.x1, box.y1]]), source=source or "manual",
            score=None, seconds=None,
        )  # fmt: skip

    @classmethod
    def from_mask(
        cls,
        label: str,
        mask: np.ndarray | MaskPatch,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        keep_mask: bool = False,
        **kwargs: Any,
    ) -> Annotation:
        """An annotation outlining a mask (full-image array or a patch) with simplified polygons."""
        patch = mask if isinstance(mask, MaskPatch) else MaskPatch.from_full(np.asarray(mask))
        polygons = patch.to_polygons(tolerance)
        if not polygons:
            raise ValueError("the mask is empty: nothing to annotate")
        return cls(
            label=label, polygons=tuple(polygons), mask=patch if keep_mask else None, **kwargs
        )


@dataclass(eq=False)
class ImageDoc:
    """One image and its annotations.

    `width`/`height` are those of the image as displayed (EXIF orientation applied). Pixels are
    loaded on demand through `loader`, which the io layer supplies; they are not kept here.
    `flags` and `extra` hold the LabelMe file's image flags and unknown keys, written back unchanged.
    `image_data` holds an embedded base64 image when the file had one (kept on save).
    `unreadable_shapes` holds shapes of the file that could not be understood; they are written back
    unchanged so that saving never deletes what another tool (or a person) put there.
    """

    path: Path
    width: int
    height: int
    annotations: list[Annotation] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    image_data: str | None = None
    unreadable_shapes: list[dict[str, Any]] = field(default_factory=list)
    loader: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def pixels(self) -> np.ndarray:
        """The image as an (height, width, 3) uint8 RGB array, orientation applied."""
        if self.loader is None:
            raise RuntimeError(f"{self.path}: no image loader attached to this document")
        return self.loader()

    def index_of(self, annotation_id: str) -> int:
        for i, ann in enumerate(self.annotations):
            if ann.id == annotation_id:
                return i
        raise KeyError(f"no annotation with id {annotation_id} in {self.path.name}")

    def get(self, annotation_id: str) -> Annotation:
        return self.annotations[self.index_of(annotation_id)]

    def labels(self) -> list[str]:
        return sorted({a.label for a in self.annotations})
