"""`IsnetProposer`: mask proposals from IS-Net's probability map of a box crop.

One network pass per box (cached, so corrective clicks and the combined engine reuse it): the box
grown by `context` per side is resampled to `input_size` squared, and the map comes back at the
image's resolution inside the box. Candidates are the map at several thresholds and its largest
part with holes filled; the network returns the dominant object of its crop, which on a box around
a small object in clutter is often a neighbour, so this engine is best used through the default
engine, which ranks its candidates together with the classic engine's (`combined.py`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    DEFAULT_DUPLICATE_IOU,
    EngineBase,
    PromptPoint,
    Proposal,
    ProposalCallback,
    as_rgb,
    deduplicate,
    validate_box,
)
from scubasteve.inference.classic.shapes import fill_holes, largest_part
from scubasteve.inference.isnet.crops import ProbMap, Window, extract, map_scale, upscale_mask


@dataclass(frozen=True)
class IsnetOptions:
    """`input_size`: side of the network input (px; any multiple of 32 works, see docs/proposals.md
    for the speed/quality curve). `context`: the crop is the box grown by this share per side.
    `thresholds`: probability cut-offs that make candidates. `bf16`: bfloat16 autocast (None: where
    the device runs it fast). `cached_maps`: probability maps kept per image."""

    input_size: int = 512
    context: float = 0.1
    thresholds: tuple[float, ...] = (0.5, 0.25, 0.75)
    bf16: bool | None = None
    cached_maps: int = 8


@dataclass(frozen=True, eq=False)
class MapCandidate:
    """A mask cut from the probability map, with the region probabilities it came from."""

    name: str
    patch: MaskPatch


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


class IsnetProposer(EngineBase):
    """IS-Net behind the `MaskProposer` interface (see the module docstring).

    Not thread-safe for concurrent `propose` calls (the app runs every engine call on one thread);
    `set_image` may be called from another thread between requests.
    """

    name = "isnet"

    def __init__(
        self,
        net: Any,
        device: str = "cpu",
        options: IsnetOptions | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        from scubasteve.inference.device import bf16_is_fast

        self.net = net
        self.device = device
        self.options = options or IsnetOptions()
        self.meta = dict(meta or {})
        self.bf16 = bf16_is_fast(device) if self.options.bf16 is None else bool(self.options.bf16)
        self.duplicate_iou = DEFAULT_DUPLICATE_IOU
        self._image: np.ndarray | None = None
        self._maps: OrderedDict[Window, ProbMap] = OrderedDict()
        self._lock = threading.Lock()

    # -- image and network ---------------------------------------------------------------------

    def set_image(self, image: np.ndarray) -> None:
        """Take an (H, W, 3) uint8 RGB image; nothing runs until a box comes."""
        rgb = as_rgb(image)
        with self._lock:
            self._image = rgb
            self._maps.clear()

    @property
    def image(self) -> np.ndarray:
        with self._lock:
            if self._image is None:
                raise ValueError("no image: call set_image() before propose()")
            return self._image

    def run(self, crop: np.ndarray) -> np.ndarray:
        """Foreground probability (S, S) float32 of a normalised (S, S, 3) float32 crop."""
        import torch

        from scubasteve.inference.device import autocast
        from scubasteve.inference.isnet.network import forward

        x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))[None])
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.device, self.bf16):
            logits = forward(self.net, x)[0]
        return torch.sigmoid(logits.float())[0, 0].cpu().numpy()

    def prob_map(self, window: Window, cancel: CancelToken | None = None) -> ProbMap:
        """The map of one window (computed once per image and window)."""
        with self._lock:
            cached = self._maps.get(window)
            if cached is not None:
                self._maps.move_to_end(window)
                return cached
        image = self.image
        raise_if_cancelled(cancel)
        crop = extract(image, window, self.options.input_size)
        result = ProbMap(self.run(crop), window)
        with self._lock:
            if image is self._image:
                self._maps[window] = result
                while len(self._maps) > self.options.cached_maps:
                    self._maps.popitem(last=False)
        return result

    def box_map(
        self,
        box: Box,
        points: Sequence[PromptPoint] = (),
        cancel: CancelToken | None = None,
    ) -> BoxMap:
        """The map of `box` (grown by the context) over the box region, with its candidates."""
        image = self.image
        height, width = image.shape[:2]
        region_box = widen_to_points(validate_box(box, width, height), points, width, height)
        window = Window.around(region_box, self.options.context)
        pmap = self.prob_map(window, cancel)
        x0, y0 = int(np.floor(region_box.x0)), int(np.floor(region_box.y0))
        x1, y1 = int(np.ceil(region_box.x1)), int(np.ceil(region_box.y1))
        scale = map_scale(x1 - x0, y1 - y0)
        prob = pmap.region(x0, y0, x1, y1, scale)
        result = BoxMap(pmap, (x0, y0, x1, y1), scale, prob)
        result.candidates = self._cut(result, points)
        return result

    # -- candidates ----------------------------------------------------------------------------

    def _cut(self, bm: BoxMap, points: Sequence[PromptPoint]) -> list[MapCandidate]:
        seeds = _seeds(bm, points)
        out: list[MapCandidate] = []
        for t in self.options.thresholds:
            mask = bm.prob > t
            out.append(MapCandidate(f"map>{t:g}", self._patch(bm, _impose(mask, seeds))))
            if t == self.options.thresholds[0]:
                main = fill_holes(largest_part(mask))
                out.append(MapCandidate("map-main", self._patch(bm, _impose(main, seeds))))
        peak = float(bm.prob.max()) if bm.prob.size else 0.0
        if 0.02 < peak <= max(self.options.thresholds):
            # A faint map still says where the network looks: cut it relative to its peak.
            mask = bm.prob > peak / 2
            out.append(MapCandidate("map>peak/2", self._patch(bm, _impose(mask, seeds))))
        return [c for c in out if c.patch.area]

    @staticmethod
    def _patch(bm: BoxMap, mask: np.ndarray) -> MaskPatch:
        x0, y0, x1, y1 = bm.region
        return MaskPatch(upscale_mask(mask, x1 - x0, y1 - y0), x0, y0)

    def propose(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal: ProposalCallback | None = None,
    ) -> list[Proposal]:
        """Up to `k` distinct proposals from the map of `box`, best first.

        Scores are the candidate's agreement with the map times the map's certainty inside the
        box (a rough quality estimate; the default engine's ranking replaces it). Positive
        clicks are added to every mask and negative ones cut out of it.
        """
        if k < 1:
            return []
        bm = self.box_map(box, points, cancel)
        raise_if_cancelled(cancel)
        certainty = float(np.mean(np.abs(2.0 * bm.prob - 1.0))) if bm.prob.size else 0.0
        proposals = []
        for cand in bm.candidates:
            agree = soft_agreement(bm, cand.patch)
            proposals.append(
                Proposal(
                    cand.patch,
                    agree * certainty,
                    f"{self.name}:{cand.name}",
                    {"map_agreement": agree, "map_certainty": certainty},
                    quality=round(agree * certainty, 3),
                )
            )
        ranked = deduplicate(proposals, k, self.duplicate_iou)
        if on_proposal is not None:
            for p in ranked:
                on_proposal(p)
        return ranked


def widen_to_points(box: Box, points: Sequence[PromptPoint], width: int, height: int) -> Box:
    """The box grown to contain every positive click (clipped to the image)."""
    xs = [p.x for p in points if p.positive]
    ys = [p.y for p in points if p.positive]
    if not xs:
        return box
    grown = Box(
        min(box.x0, min(xs) - 1),
        min(box.y0, min(ys) - 1),
        max(box.x1, max(xs) + 1),
        max(box.y1, max(ys) + 1),
    )
    return grown.clip(width, height)


def soft_agreement(bm: BoxMap, patch: MaskPatch) -> float:
    """Soft IoU of a mask with the map over the box region: sum(min) / sum(max)."""
    mask = patch_in_region(patch, bm.region, bm.prob.shape)
    p = bm.prob
    inter = float(np.minimum(p, mask).sum())
    union = float(np.maximum(p, mask).sum())
    return inter / union if union > 0 else 0.0


def patch_in_region(
    patch: MaskPatch, region: tuple[int, int, int, int], shape: tuple[int, ...]
) -> np.ndarray:
    """A mask patch as float32 over `region` sampled at `shape` (area-averaged when shrinking)."""
    x0, y0, x1, y1 = region
    full = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    px0, py0 = max(patch.x, x0), max(patch.y, y0)
    px1, py1 = min(patch.x + patch.width, x1), min(patch.y + patch.height, y1)
    if px1 > px0 and py1 > py0:
        full[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0] = patch.mask[
            py0 - patch.y : py1 - patch.y, px0 - patch.x : px1 - patch.x
        ]
    if full.shape == tuple(shape[:2]):
        return full
    return cv2.resize(full, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _seeds(bm: BoxMap, points: Sequence[PromptPoint]) -> list[tuple[int, int, bool]]:
    """Clicks as (row, col, positive) in the region's working grid."""
    x0, y0, _, _ = bm.region
    h, w = bm.prob.shape
    out = []
    for p in points:
        col = int(np.floor((p.x - x0) * bm.scale))
        row = int(np.floor((p.y - y0) * bm.scale))
        if 0 <= row < h and 0 <= col < w:
            out.append((row, col, p.positive))
    return out


def _impose(mask: np.ndarray, seeds: list[tuple[int, int, bool]]) -> np.ndarray:
    """The mask with each positive click's pixel set and each negative click's pixel cleared."""
    if not seeds:
        return mask
    out = mask.copy()
    for row, col, positive in seeds:
        out[row, col] = positive
    return out
