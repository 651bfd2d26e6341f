"""`DeepMaskProposer`: ten ranked masks for a box from a DeepMask (or SharpMask) network.

`set_image` builds an image pyramid and, by default, runs the trunk once per pyramid level
(half-octave steps, grey margin around the image) within a pixel budget. `propose(box)` then picks
windows around the box at the levels nearest the box's ideal scale (the object's longest side about
91 px of the 160 window) and at +-16 px shifts, runs only the window-sized conv and the heads on
them, maps every mask back to the image, ranks by objectness and agreement with the box (and
corrective points), removes near-duplicates and returns the best `k`. Levels that are not cached
(small objects need large scales) are computed for a local 224 px canvas around the box, all in
one batched forward pass.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    EngineBase,
    PromptPoint,
    Proposal,
    ProposalCallback,
    as_rgb,
    deduplicate,
    validate_box,
)
from scubasteve.inference.deepmask.config import (
    PUBLISHED_MARGIN_PX,
    DeepMaskConfig,
    mask_threshold_of,
)
from scubasteve.inference.deepmask.features import (
    LevelFeatures,
    compute_features,
    dense_scores,
    run_windows,
)
from scubasteve.inference.deepmask.ranking import Candidates, select
from scubasteve.inference.deepmask.scaled_views import (
    ImagePyramid,
    level_scale,
    nearest_level,
    warp_logits,
    whole_canvas_size,
)
from scubasteve.inference.deepmask.tiles import tiled_level

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeepMaskOptions:
    """Inference settings. Scales are canvas pixels per image pixel.

    `scale_steps`: pyramid levels used around the box's ideal level (half-octave steps).
    `shift_cells`: windows at +-this many cells (16 network px) around the box centre.
    `thresholds`: probabilities at which each window's mask is cut (each gives a candidate);
    None: the model's own threshold (`config.mask_threshold_of`: 0.2 for published weights as in
    `computeProposals.lua`, 0.5 for models trained here). `full_image_threshold` likewise.
    `margin_px`: grey around whole-image canvases (80, the published `bw`).
    `precompute`: run the trunk on whole pyramid levels in `set_image`, up to
    `max_precompute_scale` and `max_canvas_pixels` per level; other levels use local canvases
    (at most `max_local_levels` of them per box).
    """

    levels_per_octave: int = 2
    scale_steps: tuple[int, ...] = (-1, 0, 1)
    shift_cells: int = 1
    thresholds: tuple[float, ...] | None = None
    duplicate_iou: float = 0.8
    box_margin: float = 0.1
    score_weight: float = 0.5
    box_weight: float = 1.0
    point_weight: float = 1.0
    margin_px: int = PUBLISHED_MARGIN_PX
    precompute: bool = True
    max_precompute_scale: float = 1.0
    max_canvas_pixels: int = 1_500_000
    grid_side: int = 64
    use_refinement: bool = True
    full_image_scales: tuple[float, float] = (2**-2.5, 2**0.5)
    full_image_threshold: float | None = None
    local_cache: int = 8
    # bfloat16 trunk (heads stay float32): off by default, as it did not agree closely enough with
    # float32 on the published layout (docs/deepmask.md, ADR 0204); None: where it runs fast.
    bf16: bool | None = False
    max_local_levels: int = 2
    min_box_side: float = 4.0


@dataclass
class SetImageStats:
    seconds: float = 0.0
    levels: list[float] = field(default_factory=list)
    pixels: int = 0
    nbytes: int = 0


class DeepMaskProposer(EngineBase):
    """The DeepMask engine behind the `MaskProposer` protocol."""

    name = "deepmask"

    def __init__(
        self,
        net: Any,
        config: DeepMaskConfig,
        device: str = "cpu",
        options: DeepMaskOptions | None = None,
        meta: dict[str, Any] | None = None,
    ):
        import torch

        self.net = net.to(device).eval().to(memory_format=torch.channels_last)
        self.config = config
        self.device = device
        self.meta = dict(meta or {})
        self.options = _with_thresholds(options or DeepMaskOptions(), self.meta)
        self.refine = bool(config.sharpmask and self.options.use_refinement)
        from scubasteve.inference.device import bf16_is_fast

        self.bf16 = bf16_is_fast(device) if self.options.bf16 is None else bool(self.options.bf16)
        self._pyramid: ImagePyramid | None = None
        self._levels: dict[int, LevelFeatures] = {}
        self._local: OrderedDict[tuple[int, int, int], LevelFeatures] = OrderedDict()
        self.last_set_image = SetImageStats()
        #: Trunk passes the last `propose` needed (0: served from cached features only).
        self.last_trunk_passes = 0
        #: (scale, windows scored) of every level the last `propose_image` ran.
        self.last_image_levels: list[tuple[float, int]] = []

    # --- per-image work ---------------------------------------------------------------------------

    def set_image(self, image: np.ndarray, *, cancel: CancelToken | None = None) -> None:
        """Take an (H, W, 3) uint8 RGB image (grey/RGBA accepted) and cache its pyramid features.

        This is the slow step (a trunk pass per pyramid level). `cancel` (an extension of the
        protocol) stops it between levels with `Cancelled`, leaving the engine without an image.
        """
        t0 = time.perf_counter()
        rgb = as_rgb(image)
        self._pyramid = None
        self._levels = {}
        self._local.clear()
        pyramid = ImagePyramid(rgb)
        self._pyramid = pyramid
        stats = SetImageStats()
        if self.options.precompute:
            h, w = rgb.shape[:2]
            lo = nearest_level(self.config.object_size / max(h, w), self.options.levels_per_octave)
            lo += min(self.options.scale_steps)
            hi = math.floor(
                self.options.levels_per_octave * math.log2(self.options.max_precompute_scale) + 1e-9
            )
            for n in range(lo, hi + 1):
                if cancel is not None and cancel.cancelled:
                    self._pyramid, self._levels = None, {}
                    cancel.raise_if_cancelled()
                if self._compute_level(n) is not None:
                    stats.levels.append(level_scale(n, self.options.levels_per_octave))
        stats.seconds = time.perf_counter() - t0
        stats.nbytes = sum(lf.nbytes() for lf in self._levels.values())
        self.last_set_image = stats

    def _level_size(self, n: int) -> tuple[float, int, int]:
        """Scale and (width, height) of the whole canvas of pyramid level `n`."""
        assert self._pyramid is not None
        s = level_scale(n, self.options.levels_per_octave)
        m = self.options.margin_px
        w, h = whole_canvas_size(
            self._pyramid.width, self._pyramid.height, s, m, self.config.stride
        )
        # At least one whole window (with its context ring) even for thin images at small scales.
        least = (self.config.fsz + 2 * max(self.config.context_cells, 1)) * self.config.stride
        return s, max(w, least), max(h, least)

    def _compute_level(
        self, n: int, tiled: bool = False, cancel: CancelToken | None = None
    ) -> LevelFeatures | None:
        """Features of level `n`: one trunk pass (cached) when its canvas fits
        `max_canvas_pixels`; else, with `tiled`, tile by tile within that budget (not cached);
        else None."""
        if n in self._levels:
            return self._levels[n]
        assert self._pyramid is not None
        s, w, h = self._level_size(n)
        m = self.options.margin_px
        if w * h <= self.options.max_canvas_pixels:
            canvas = self._pyramid.scaled_view(s, m, m, w, h)
            (lf,) = compute_features(
                self.net, self.config, [canvas], self.device, self.refine, self.bf16
            )
            self._levels[n] = lf
            self.last_trunk_passes += 1
            return lf
        if not tiled:
            return None
        lf, passes = tiled_level(
            self.net,
            self.config,
            self._pyramid,
            s,
            m,
            (w, h),
            self.device,
            self.refine,
            self.bf16,
            self.options.max_canvas_pixels,
            cancel,
        )
        self.last_trunk_passes += passes
        return lf

    def _local_levels(self, levels: list[int], cx: float, cy: float) -> dict[int, LevelFeatures]:
        """Features of local canvases centred on (cx, cy) for levels not cached as whole images."""
        assert self._pyramid is not None
        cfg, opts = self.config, self.options
        side = (cfg.fsz + 2 * opts.shift_cells + 2 * max(cfg.context_cells, 1)) * cfg.stride
        found: dict[int, LevelFeatures] = {}
        todo = []
        for n in levels:
            key = (n, round(cx), round(cy))
            if key in self._local:
                self._local.move_to_end(key)
                found[n] = self._local[key]
            else:
                s = level_scale(n, opts.levels_per_octave)
                todo.append(
                    (
                        key,
                        self._pyramid.scaled_view(
                            s, side / 2 - s * cx, side / 2 - s * cy, side, side
                        ),
                    )
                )
        self.last_trunk_passes += len(todo)
        if todo:
            feats = compute_features(
                self.net, cfg, [c for _, c in todo], self.device, self.refine, self.bf16
            )
            for (key, _), lf in zip(todo, feats, strict=True):
                found[key[0]] = lf
                self._local[key] = lf
            while len(self._local) > opts.local_cache:
                self._local.popitem(last=False)
        return found

    # --- box prompts ------------------------------------------------------------------------------

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
        """Up to `k` distinct masks for the object in `box`, best first (see the module docstring)."""
        if self._pyramid is None:
            raise RuntimeError("call set_image before propose")
        height, width = self._pyramid.height, self._pyramid.width
        box = validate_box(box, width, height)
        if k <= 0:
            return []
        cfg, opts = self.config, self.options
        raise_if_cancelled(cancel)
        self.last_trunk_passes = 0
        side = max(box.width, box.height, opts.min_box_side)
        ideal = nearest_level(cfg.object_size / side, opts.levels_per_octave)
        levels = [ideal + d for d in opts.scale_steps]
        cx, cy = box.center
        feats = {n: self._levels[n] for n in levels if n in self._levels}
        # Uncached levels cost a trunk pass each: the ideal one first, then zooming out (whole
        # object with context) before zooming in (parts).
        missing = sorted((n for n in levels if n not in feats), key=lambda n: (abs(n - ideal), n))
        feats.update(self._local_levels(missing[: max(1, opts.max_local_levels)], cx, cy))
        levels = [n for n in levels if n in feats]
        raise_if_cancelled(cancel)

        windows: list[tuple[LevelFeatures, int, int]] = []
        tags: list[str] = []
        seen: set[tuple[int, int, int]] = set()

        def add(n: int, i: int, j: int, tag: str) -> None:
            lf = feats[n]
            i, j = lf.clamp(i, j, cfg)
            if (id(lf), i, j) not in seen:
                seen.add((id(lf), i, j))
                windows.append((lf, i, j))
                tags.append(tag)

        r = opts.shift_cells
        for n in levels:
            i0, j0 = feats[n].centre_cell(cx, cy, cfg)
            for di in range(-r, r + 1):
                for dj in range(-r, r + 1):
                    add(n, i0 + di, j0 + dj, f"l{n - ideal:+d}x{dj:+d}y{di:+d}")
        for p in points:
            if p.positive:
                for n in levels:
                    i, j = feats[n].centre_cell(p.x, p.y, cfg)
                    add(n, i, j, f"l{n - ideal:+d}pt")

        logits, scores = run_windows(self.net, cfg, windows, self.refine)
        raise_if_cancelled(cancel)
        wins = [lf.window(i, j, cfg) for lf, i, j in windows]
        cands = Candidates(logits, scores, wins, tags)
        region = _region(box, points, opts.box_margin, width, height)
        chosen = select(cands, box, region, points, opts, k)
        out: list[Proposal] = []
        source = "deepmask:sharp-" if self.refine else "deepmask:"
        for c in chosen:
            raise_if_cancelled(cancel)
            patch = _full_patch(logits[c.index], wins[c.index], region, c.threshold)
            if patch.area == 0:
                continue
            prop = Proposal(patch, float(c.rank), source + tags[c.index], c.extras)
            out.append(prop)
            if on_proposal is not None:
                on_proposal(prop)
        return out

    # --- whole-image proposals --------------------------------------------------------------------

    def propose_image(
        self, k: int = 100, *, max_iou: float = 0.9, cancel: CancelToken | None = None
    ) -> list[Proposal]:
        """Up to `k` object masks anywhere in the image, by objectness, as the published
        full-image inference (`InferDeepMask.lua`): every stride-16 window of every level in
        `full_image_scales` (all 7 half-octave scales 2^-2.5 .. 2^0.5 by default). Levels whose
        canvas exceeds `max_canvas_pixels` are computed in tiles within that budget."""
        if self._pyramid is None:
            raise RuntimeError("call set_image before propose_image")
        cfg, opts = self.config, self.options
        lo = nearest_level(opts.full_image_scales[0], opts.levels_per_octave)
        hi = nearest_level(opts.full_image_scales[1], opts.levels_per_octave)
        keep = 4 * k
        entries: list[tuple[float, LevelFeatures, int, int]] = []
        self.last_trunk_passes = 0
        self.last_image_levels = []
        for n in range(lo, hi + 1):
            raise_if_cancelled(cancel)
            lf = self._compute_level(n, tiled=True, cancel=cancel)
            assert lf is not None
            scores = dense_scores(self.net, cfg, lf, self.bf16)
            self.last_image_levels.append((lf.scale, int(scores.size)))
            top = np.argsort(-scores, axis=None)[:keep]
            for i, j in zip(*np.unravel_index(top, scores.shape), strict=True):
                entries.append((float(scores[i, j]), lf, int(i), int(j)))
            # Keep only the best so far, so that levels without a candidate are freed.
            entries.sort(key=lambda e: -e[0])
            del entries[keep:], lf
        if not entries:
            return []
        height, width = self._pyramid.height, self._pyramid.width
        props = []
        for start in range(0, len(entries), _MASK_CHUNK):
            raise_if_cancelled(cancel)
            chunk = entries[start : start + _MASK_CHUNK]
            masks, _ = run_windows(self.net, cfg, [(e[1], e[2], e[3]) for e in chunk], self.refine)
            for (score, lf, i, j), logit in zip(chunk, masks, strict=True):
                win = lf.window(i, j, cfg)
                region = Box(win[0], win[1], win[0] + win[2], win[1] + win[2]).clip(width, height)
                if region.width < 1 or region.height < 1:
                    continue
                patch = _full_patch(logit, win, region, float(opts.full_image_threshold or 0.5))
                if patch.area:
                    prob = 1 / (1 + math.exp(-score))
                    extras = {"objectness": prob, "scale": lf.scale}
                    props.append(Proposal(patch, prob, "deepmask:full", extras))
        return deduplicate(props, k, max_iou)


#: Windows whose masks are decoded in one batch by `propose_image`.
_MASK_CHUNK = 256


def _with_thresholds(opts: DeepMaskOptions, meta: dict[str, Any]) -> DeepMaskOptions:
    """`opts` with unset mask thresholds replaced by the model's own (recorded in `meta`)."""
    value, source = mask_threshold_of(meta)
    meta.setdefault("mask_threshold", value)
    meta.setdefault("mask_threshold_source", source)
    return replace(
        opts,
        thresholds=opts.thresholds if opts.thresholds is not None else (value,),
        full_image_threshold=(
            opts.full_image_threshold if opts.full_image_threshold is not None else value
        ),
    )


def _region(box: Box, points: Sequence[PromptPoint], margin: float, width: int, height: int) -> Box:
    """Integer image region where masks may lie: the box grown by `margin`, plus the points."""
    pad_x, pad_y = margin * box.width + 2, margin * box.height + 2
    xs = [box.x0 - pad_x, box.x1 + pad_x] + [p.x for p in points]
    ys = [box.y0 - pad_y, box.y1 + pad_y] + [p.y for p in points]
    x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    x1, y1 = min(width, math.ceil(max(xs))), min(height, math.ceil(max(ys)))
    return Box(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def _full_patch(
    logits: np.ndarray, win: tuple[float, float, float], region: Box, threshold: float
) -> MaskPatch:
    """The window's mask at image resolution inside `region`, as a tight patch."""
    x0, y0 = int(region.x0), int(region.y0)
    w, h = int(region.width), int(region.height)
    cut = math.log(threshold / (1 - threshold))
    mask = warp_logits(logits, win, (x0, y0), 1.0, (w, h)) > cut
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return MaskPatch(np.zeros((1, 1), dtype=bool), x0, y0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return MaskPatch(mask[r0:r1, c0:c1].copy(), x0 + int(c0), y0 + int(r0))
