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
from dataclasses import dataclass
from typing import Any

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
    validate_box,
)
from scubasteve.inference.classic.shapes import fill_holes, largest_part
from scubasteve.inference.isnet.clicks import click_edits, zoom_window, zoomed
from scubasteve.inference.isnet.crops import (
    BoxMap,
    MapCandidate,
    ProbMap,
    Window,
    extract,
    map_scale,
)

#: Added to the rank of an edit of the mask being corrected: after a click the edits answer it,
#: the global re-cuts follow as alternatives (as in the classic engine, ADR 0104).
EDIT_BONUS = 0.3


def is_edit_source(source: str) -> bool:
    """Whether a proposal's source names an edit of the mask being corrected (either engine)."""
    detail = source.split(":", 1)[-1]
    return detail.startswith(("edit", "map-edit", "map-zoom"))


@dataclass(frozen=True)
class IsnetOptions:
    """`input_size`: side of the network input (px; any multiple of 32 works); 0 (the default)
    adapts it to the crop: twice the crop's longer side, rounded to 32, within `min_input` and
    `max_input` (docs/proposals.md has the measurements: IS-Net segments best when the object is
    shown about twice its size, and a small box blown up to a large input loses). `context`: the
    crop is the box grown by this share per side.
    `thresholds`: probability cut-offs that make candidates. `bf16`: bfloat16 autocast (None: where
    the device runs it fast). `cached_maps`: probability maps kept per image."""

    input_size: int = 0
    min_input: int = 320
    max_input: int = 768
    context: float = 0.1
    thresholds: tuple[float, ...] = (0.5, 0.25, 0.75)
    bf16: bool | None = None
    cached_maps: int = 8


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

        from scubasteve.inference.device import autocast, denormals_flushed
        from scubasteve.inference.isnet.network import forward

        x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))[None])
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        # fine-tuned weights have denormals (see `denormals_flushed`)
        with (
            torch.inference_mode(),
            autocast(self.device, self.bf16),
            denormals_flushed(self.device),
        ):
            logits = forward(self.net, x)[0]
        return torch.sigmoid(logits.float())[0, 0].cpu().numpy()

    def input_size_for(self, window: Window) -> int:
        """The network input side for a crop (see `IsnetOptions.input_size`)."""
        opts = self.options
        if opts.input_size:
            return opts.input_size
        side = 2 * max(window.width, window.height)
        return int(min(opts.max_input, max(opts.min_input, 32 * round(side / 32))))

    def compute_map(self, window: Window) -> np.ndarray:
        """The network's (S, S) map of a window of the current image (not cached)."""
        return self.run(extract(self.image, window, self.input_size_for(window)))

    def prob_map(self, window: Window, cancel: CancelToken | None = None) -> ProbMap:
        """The map of one window (computed once per image and window)."""
        with self._lock:
            cached = self._maps.get(window)
            if cached is not None:
                self._maps.move_to_end(window)
                return cached
            image = self._image
        raise_if_cancelled(cancel)
        result = ProbMap(self.compute_map(window), window)
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
        previous: MaskPatch | None = None,
    ) -> BoxMap:
        """The map of `box` (grown by the context) over the box region, with its candidates.

        With clicks on a mask being corrected (`previous`), the edits of that mask that answer
        the last click come first (`clicks.click_edits`).
        """
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
        edits = []
        if previous is not None and points:
            edits = click_edits(result, previous, points)
            # A second look at the clicked part: the network on a crop around the click, where
            # that part dominates (after a click the box's map is often what was wrong).
            zoom = self.prob_map(zoom_window(result, points[-1], self.options.context), cancel)
            view, inside = zoomed(result, zoom)
            edits += click_edits(view, previous, points, within=inside, prefix="map-zoom")
        result.candidates = [MapCandidate.of_patch(name, patch, result) for name, patch in edits]
        result.candidates += self._cut(result, points)
        return result

    # -- candidates ----------------------------------------------------------------------------

    def _cut(self, bm: BoxMap, points: Sequence[PromptPoint]) -> list[MapCandidate]:
        seeds = _seeds(bm, points)
        out: list[MapCandidate] = []
        for t in self.options.thresholds:
            mask = bm.prob > t
            out.append(MapCandidate(f"map>{t:g}", _impose(mask, seeds), bm.region))
            if t == self.options.thresholds[0]:
                main = fill_holes(largest_part(mask))
                out.append(MapCandidate("map-main", _impose(main, seeds), bm.region))
        peak = float(bm.prob.max()) if bm.prob.size else 0.0
        if 0.02 < peak <= max(self.options.thresholds):
            # A faint map still says where the network looks: cut it relative to its peak.
            mask = bm.prob > peak / 2
            out.append(MapCandidate("map>peak/2", _impose(mask, seeds), bm.region))
        return [c for c in out if c.grid.any()]

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
        bm = self.box_map(box, points, cancel, previous if points else None)
        raise_if_cancelled(cancel)
        certainty = float(np.mean(np.abs(2.0 * bm.prob - 1.0))) if bm.prob.size else 0.0
        scored = []
        for cand in bm.candidates:
            agree = soft_agreement(bm, cand.grid)
            bonus = EDIT_BONUS if points and cand.name.startswith(("map-edit", "map-zoom")) else 0.0
            scored.append((agree * certainty + bonus, agree, cand))
        scored.sort(key=lambda s: s[0], reverse=True)
        kept: list[MapCandidate] = []
        ranked = []
        for score, agree, cand in scored:  # duplicates judged on the grid: no mask is made for them
            if any(grid_iou(cand.grid, other.grid) > self.duplicate_iou for other in kept):
                continue
            kept.append(cand)
            ranked.append(
                Proposal(
                    cand.patch,
                    score,
                    f"{self.name}:{cand.name}",
                    {"map_agreement": agree, "map_certainty": certainty},
                    quality=round(agree * certainty, 3),
                )
            )
            if len(ranked) >= k:
                break
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


def soft_agreement(bm: BoxMap, grid: np.ndarray) -> float:
    """Soft IoU of a mask (on the box map's grid) with the map: sum(min) / sum(max)."""
    mask = grid.astype(np.float32)
    p = bm.prob
    inter = float(np.minimum(p, mask).sum())
    union = float(np.maximum(p, mask).sum())
    return inter / union if union > 0 else 0.0


def grid_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


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
    out: np.ndarray = mask.copy()
    for row, col, positive in seeds:
        out[row, col] = positive
    return out
