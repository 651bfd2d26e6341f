"""Trunk features of canvases, cached per image, and the heads run on windows of them.

The trunk is fully convolutional (stride 16), so one pass over a canvas gives the features of every
network window in it: the window whose top-left feature cell is (i, j) covers canvas pixels
[16 j, 16 j + 160) x [16 i, 16 i + 160), with its 16 px of context around it. This is how the
published full-image inference runs DeepMask, and what makes box inference cheap once an image's
levels are computed: only the 10x10 conv and the heads run per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.inference.deepmask.scaled_views import ScaledView
from scubasteve.inference.device import autocast


@dataclass
class LevelFeatures:
    """Features of one canvas. `reduced`: (neck_channels, rows, cols) after the 1x1 conv and ReLU.
    `hs`: SharpMask horizontal outputs (C_k, rows * 2^k, cols * 2^k), or None."""

    scale: float
    ox: float
    oy: float
    reduced: Any
    hs: list[Any] | None = None

    @property
    def rows(self) -> int:
        return int(self.reduced.shape[1])

    @property
    def cols(self) -> int:
        return int(self.reduced.shape[2])

    def nbytes(self) -> int:
        tensors = [self.reduced, *(self.hs or [])]
        return int(sum(t.numel() * t.element_size() for t in tensors))

    def centre_cell(self, x: float, y: float, cfg: DeepMaskConfig) -> tuple[int, int]:
        """Top-left cell (i, j) of the window centred nearest to image point (x, y)."""
        j = round((self.scale * x + self.ox - cfg.window / 2) / cfg.stride)
        i = round((self.scale * y + self.oy - cfg.window / 2) / cfg.stride)
        return self.clamp(i, j, cfg)

    def clamp(self, i: int, j: int, cfg: DeepMaskConfig) -> tuple[int, int]:
        return (
            int(min(max(i, 0), max(self.rows - cfg.fsz, 0))),
            int(min(max(j, 0), max(self.cols - cfg.fsz, 0))),
        )

    def window(self, i: int, j: int, cfg: DeepMaskConfig) -> tuple[float, float, float]:
        """(x0, y0, side) of window (i, j) in image coordinates."""
        s = self.scale
        return (cfg.stride * j - self.ox) / s, (cfg.stride * i - self.oy) / s, cfg.window / s


def compute_features(
    net: Any,
    cfg: DeepMaskConfig,
    canvases: list[ScaledView],
    device: str,
    refine: bool,
    bf16: bool = False,
) -> list[LevelFeatures]:
    """Features of canvases of one size, in one batched forward pass."""
    import torch

    from scubasteve.inference.deepmask import network as N

    if not canvases:
        return []
    batch = np.stack([c.pixels for c in canvases])
    with torch.inference_mode(), autocast(device, bf16):
        x = N.normalise(batch, device=device).contiguous(memory_format=torch.channels_last)
        feats, skips = N.run_trunk(net, cfg, x, skips=refine)
        reduced = net["neck"][1](net["neck"][0](feats))
        hs = N.horizontal(net, [feats, *skips]) if refine else None
    out = []
    for b, c in enumerate(canvases):
        out.append(
            LevelFeatures(
                c.scale,
                c.ox,
                c.oy,
                reduced[b].contiguous(),
                [h[b].contiguous() for h in hs] if hs is not None else None,
            )
        )
    return out


def _horizontal(lf: LevelFeatures) -> list[Any]:
    if lf.hs is None:
        raise RuntimeError("SharpMask windows need features computed with the refinement")
    return lf.hs


def run_windows(
    net: Any,
    cfg: DeepMaskConfig,
    windows: list[tuple[LevelFeatures, int, int]],
    refine: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask logits (N, m, m) (SharpMask: (N, window, window)) and objectness logits (N,).

    The heads run in float32 even on features a bfloat16 trunk computed (they are widened): for
    the few windows of a box they cost little, and bfloat16 logits reorder near-equal proposals
    (`scubasteve bench deepmask-precision`, docs/deepmask.md)."""
    import torch

    from scubasteve.inference.deepmask import network as N

    f = cfg.fsz
    with torch.inference_mode():
        x = torch.stack([lf.reduced[:, i : i + f, j : j + f] for lf, i, j in windows]).float()
        emb = net["neck"][2](x)
        scores = N.score_logits(net, emb).reshape(-1)
        if refine:
            hs = []
            for k in range(4):
                r = 2**k
                hs.append(
                    torch.stack(
                        [
                            _horizontal(lf)[k][:, i * r : (i + f) * r, j * r : (j + f) * r]
                            for lf, i, j in windows
                        ]
                    ).float()
                )
            masks = N.refine(net, cfg, emb, hs)
        else:
            masks = N.mask_logits(net, cfg, emb)
            if masks.ndim == 5:  # h = w = 1 always here, but keep the shape contract explicit
                masks = masks[:, 0, 0]
        return masks.float().cpu().numpy(), scores.float().cpu().numpy()


def dense_scores(
    net: Any, cfg: DeepMaskConfig, lf: LevelFeatures, bf16: bool = False, max_windows: int = 4096
) -> np.ndarray:
    """Objectness logits (rows, cols) of every window of a level, `max_windows` at a time (the
    512-d embeddings and the 1024-wide score layer of a whole 24 Mpx level would take a GB)."""
    import torch

    from scubasteve.inference.deepmask import network as N

    f = cfg.fsz
    rows, cols = lf.rows - f + 1, lf.cols - f + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)), dtype=np.float32)
    step = max(1, max_windows // cols)
    out = []
    with torch.inference_mode(), autocast(str(lf.reduced.device), bf16):
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            x = lf.reduced[None, :, r0 : r1 + f - 1]
            if not bf16:
                x = x.float()
            emb = net["neck"][2](x)
            scores = N.score_logits(net, emb)
            out.append(scores.float().reshape(r1 - r0, cols).cpu().numpy())
    return np.concatenate(out)
