"""Training samples for DeepMask, drawn as published.

Positives: pick a category, then one of its (non-crowd, large enough) objects; scale the image so the
object's longest side is `object_size` (about 91 px of the 160 window) times 2^u, u in [-1/4, 1/4];
shift the crop by up to +-16 px; fill outside the image with grey; flip half of them. The label is
that object's mask over the central window at `label_size` (112) resolution. Negatives (for the
score head): random positions and scales where no object is centred within +-48 px at a scale within
an octave of the crop's.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from scubasteve.core.annotation import ImageDoc, MaskPatch
from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.inference.deepmask.scaled_views import ImagePyramid

#: Objects smaller than this (pixels of mask area) are not used, as published.
MIN_AREA = 100
SHIFT_PX = 16
SCALE_JITTER = 0.25
NEG_CENTRE_PX = 48
NEG_OCTAVES = 1.0


@dataclass(frozen=True)
class Instance:
    """One training object: its image (index into the docs), label and mask patch."""

    doc: int
    label: str
    patch: MaskPatch

    @property
    def centre(self) -> tuple[float, float]:
        return self.patch.x + self.patch.width / 2, self.patch.y + self.patch.height / 2

    @property
    def side(self) -> float:
        return float(max(self.patch.width, self.patch.height))


@dataclass
class DatasetSummary:
    images: int = 0
    annotations: int = 0
    used: int = 0
    too_small: int = 0
    crowd: int = 0
    no_area: int = 0

    def describe(self) -> str:
        return (
            f"{self.images} images, {self.annotations} annotations: {self.used} used, "
            f"{self.too_small} below {MIN_AREA} px, {self.crowd} crowd, {self.no_area} without area"
        )


def collect_instances(
    docs: Sequence[ImageDoc], min_area: int = MIN_AREA
) -> tuple[list[Instance], DatasetSummary]:
    """The usable objects of `docs` (masks rasterised once, kept as tight patches)."""
    out: list[Instance] = []
    summary = DatasetSummary(images=len(docs))
    for d, doc in enumerate(docs):
        for ann in doc.annotations:
            summary.annotations += 1
            if ann.extra.get("iscrowd"):
                summary.crowd += 1
                continue
            if not ann.has_area:
                summary.no_area += 1
                continue
            patch = MaskPatch.from_full(ann.to_mask(doc.height, doc.width))
            if patch.area < min_area:
                summary.too_small += 1
                continue
            out.append(Instance(d, ann.label, patch))
    summary.used = len(out)
    return out, summary


def check_dataset(
    instances: Sequence[Instance], summary: DatasetSummary, where: str, need_images: int = 1
) -> None:
    """Clear errors for datasets that cannot train anything."""
    if summary.images == 0:
        raise InputError(
            "the dataset has no annotated images (no LabelMe shapes or COCO annotations)", where
        )
    if not instances:
        if summary.annotations == 0:
            raise InputError(f"the dataset has no annotations ({summary.images} images)", where)
        raise InputError(
            "no object is usable for training: "
            + summary.describe()
            + f". DeepMask needs objects of at least {MIN_AREA} px of mask area",
            where,
        )
    images = len({i.doc for i in instances})
    if images < need_images:
        raise InputError(
            f"only {images} image(s) with usable objects; training needs at least {need_images} "
            "(some are held out for validation)",
            where,
        )


class SampleSource:
    """Draws positive and negative crops from documents; keeps a bounded cache of image pyramids."""

    def __init__(
        self,
        docs: Sequence[ImageDoc],
        instances: Sequence[Instance],
        config: DeepMaskConfig,
        cache_images: int = 256,
        label_size: int | None = None,
        shift_px: float = SHIFT_PX,
        scale_jitter: float = SCALE_JITTER,
    ):
        if not instances:
            raise InputError("no training objects")
        self.docs = list(docs)
        self.instances = list(instances)
        self.cfg = config
        self.label_size = label_size or config.label_size
        self.shift_px, self.scale_jitter = shift_px, scale_jitter
        self.by_label: dict[str, list[int]] = {}
        for i, inst in enumerate(self.instances):
            self.by_label.setdefault(inst.label, []).append(i)
        self.labels = sorted(self.by_label)
        self.by_doc: dict[int, list[Instance]] = {}
        for inst in self.instances:
            self.by_doc.setdefault(inst.doc, []).append(inst)
        self.doc_ids = sorted(self.by_doc)
        self._cache: OrderedDict[int, ImagePyramid] = OrderedDict()
        self._cache_size = cache_images

    def pyramid(self, d: int) -> ImagePyramid:
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
        pyr = ImagePyramid(np.ascontiguousarray(pixels[:, :, :3]))
        self._cache[d] = pyr
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return pyr

    # --- positives -------------------------------------------------------------------------------

    def pick_instance(self, rng: np.random.Generator) -> Instance:
        label = self.labels[int(rng.integers(len(self.labels)))]
        members = self.by_label[label]
        return self.instances[members[int(rng.integers(len(members)))]]

    def positive(
        self, inst: Instance, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(input (S, S, 3) uint8, label (L, L) bool) for one object; no jitter when rng is None."""
        cfg = self.cfg
        u = rng.uniform(-self.scale_jitter, self.scale_jitter) if rng is not None else 0.0
        dx, dy = (
            rng.uniform(-self.shift_px, self.shift_px, size=2) if rng is not None else (0.0, 0.0)
        )
        scale = cfg.object_size / inst.side * 2.0**u
        cx, cy = inst.centre
        half = cfg.input_size / 2
        ox, oy = half - scale * cx - dx, half - scale * cy - dy
        crop = (
            self.pyramid(inst.doc).scaled_view(scale, ox, oy, cfg.input_size, cfg.input_size).pixels
        )
        label = self._label(inst.patch, scale, ox, oy)
        if rng is not None and rng.random() < 0.5:
            crop, label = crop[:, ::-1], label[:, ::-1]
        return np.ascontiguousarray(crop), np.ascontiguousarray(label)

    def _label(self, patch: MaskPatch, scale: float, ox: float, oy: float) -> np.ndarray:
        cfg, n = self.cfg, self.label_size
        k = n / cfg.window
        a = scale * k
        bx = (scale * patch.x + ox - cfg.context) * k
        by = (scale * patch.y + oy - cfg.context) * k
        matrix = np.array(
            [[a, 0, bx + 0.5 * a - 0.5], [0, a, by + 0.5 * a - 0.5]], dtype=np.float64
        )
        src = patch.mask.astype(np.float32)
        if a < 0.5:  # downscaling a lot: average first so thin parts are not skipped
            f = max(1, int(1 / a))
            small = cv2.resize(
                src,
                (max(1, patch.width // f), max(1, patch.height // f)),
                interpolation=cv2.INTER_AREA,
            )
            fx, fy = small.shape[1] / patch.width, small.shape[0] / patch.height
            matrix = np.array(
                [[a / fx, 0, bx + 0.5 * a / fx - 0.5], [0, a / fy, by + 0.5 * a / fy - 0.5]],
                dtype=np.float64,
            )
            src = small
        out = cv2.warpAffine(
            src,
            matrix,
            (n, n),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return out > 0.5

    # --- negatives -------------------------------------------------------------------------------

    def negative(self, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
        """A crop with no object centred on it at about its scale."""
        cfg = self.cfg
        half = cfg.input_size / 2
        for attempt in range(tries + 1):
            d = self.doc_ids[int(rng.integers(len(self.doc_ids)))]
            doc = self.docs[d]
            big = max(doc.width, doc.height)
            side = math.exp(rng.uniform(math.log(8.0), math.log(max(16.0, 1.5 * big))))
            scale = cfg.object_size / side
            if attempt == tries:
                scale *= 2.0 ** (3 * NEG_OCTAVES)  # everything is far too big at this zoom
            cx, cy = rng.uniform(0, doc.width), rng.uniform(0, doc.height)
            if attempt == tries or not self._near_object(d, cx, cy, scale):
                ox, oy = half - scale * cx, half - scale * cy
                return (
                    self.pyramid(d)
                    .scaled_view(scale, ox, oy, cfg.input_size, cfg.input_size)
                    .pixels
                )
        raise AssertionError("unreachable")

    def _near_object(self, d: int, cx: float, cy: float, scale: float) -> bool:
        for inst in self.by_doc.get(d, []):
            ix, iy = inst.centre
            inst_scale = self.cfg.object_size / inst.side
            if (
                abs(ix - cx) * scale <= NEG_CENTRE_PX
                and abs(iy - cy) * scale <= NEG_CENTRE_PX
                and abs(math.log2(inst_scale / scale)) <= NEG_OCTAVES
            ):
                return True
        return False

    # --- batches ---------------------------------------------------------------------------------

    def mask_batch(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs (n, S, S, 3) uint8, labels (n, L, L) bool), all positives."""
        pairs = [self.positive(self.pick_instance(rng), rng) for _ in range(n)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def score_batch(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs (n, S, S, 3) uint8, labels (n,) float 1/0): half positives, half negatives."""
        n_pos = n // 2
        crops = [self.positive(self.pick_instance(rng), rng)[0] for _ in range(n_pos)]
        crops += [self.negative(rng) for _ in range(n - n_pos)]
        labels = np.array([1.0] * n_pos + [0.0] * (n - n_pos), dtype=np.float32)
        order = rng.permutation(n)
        return np.stack(crops)[order], labels[order]


def split_by_image(n_docs: int, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, validation) document indices: a seeded shuffle, at least one image on each side."""
    if n_docs < 2:
        raise InputError(
            f"a train/validation split needs at least 2 images, the dataset has {n_docs}"
        )
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"the validation fraction must lie between 0 and 1, got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n_docs).tolist()
    n_val = min(n_docs - 1, max(1, round(n_docs * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])
