"""Trunk features of a whole pyramid level computed tile by tile, within a pixel budget per pass.

The published full-image inference (facebookresearch/deepmask `InferDeepMask.lua`) runs the trunk
on the whole padded image at each of its 7 scales 2^-2.5 .. 2^0.5. At scale 2^0.5 a 12 MP photo
is a 24 Mpx canvas, whose ResNet activations take several GB. Here a level that does not fit
`max_pixels` is cut into tiles: each tile is the part of the canvas its feature cells need plus a
halo of at least half the trunk's receptive field, so the cells kept from each tile are the cells a
whole-canvas pass would give (same arithmetic, up to floating-point summation order). The kept
cells are pasted into one `LevelFeatures` of the whole level, which is small (128 channels at
stride 16), so the rest of the engine cannot tell tiled levels from whole ones.
"""

from __future__ import annotations

import math
from typing import Any

from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.inference.deepmask.features import LevelFeatures, compute_features
from scubasteve.inference.deepmask.scaled_views import ImagePyramid


def receptive_field(cfg: DeepMaskConfig) -> int:
    """Input pixels seen by one layer3 cell of the bottleneck ResNet trunk (267 for ResNet-50).

    Stem 7x7 stride 2, 3x3 max-pool stride 2, then per block one 3x3 conv at the stage's input
    stride (the first block of layers 2 and 3 strides in its 3x3 conv, as torchvision and
    fb.resnet.torch do).
    """
    b1, b2, b3 = cfg.trunk_blocks
    rf = 7 + 2 * 2  # stem at stride 1, max-pool at stride 2
    rf += b1 * 2 * 4  # layer1 at stride 4
    rf += 2 * 4 + (b2 - 1) * 2 * 8  # layer2: first 3x3 at stride 4, the rest at 8
    rf += 2 * 8 + (b3 - 1) * 2 * 16  # layer3: first 3x3 at stride 8, the rest at 16
    return rf


def halo_px(cfg: DeepMaskConfig) -> int:
    """Canvas pixels of context around a tile's kept cells (a multiple of the stride).

    Half the receptive field plus one cell; SharpMask's horizontal nets add three 3x3 convs on the
    layer3 map (three cells)."""
    extra = 3 * cfg.stride if cfg.sharpmask else 0
    need = receptive_field(cfg) / 2 + cfg.stride + extra
    return int(math.ceil(need / cfg.stride) * cfg.stride)


def tile_spans(cells: int, core: int) -> list[tuple[int, int]]:
    """Split `cells` feature cells into consecutive spans of at most `core` cells."""
    n = max(1, math.ceil(cells / core))
    step = math.ceil(cells / n)
    return [(a, min(cells, a + step)) for a in range(0, cells, step)]


def tiled_level(
    net: Any,
    cfg: DeepMaskConfig,
    pyramid: ImagePyramid,
    scale: float,
    margin: int,
    size: tuple[int, int],
    device: str,
    refine: bool,
    bf16: bool,
    max_pixels: int,
    cancel: CancelToken | None = None,
) -> tuple[LevelFeatures, int]:
    """Features of the (width, height) = `size` canvas U = scale * X + margin (sides multiples
    of the stride, as `whole_canvas_size` makes them), computed in tiles of at most `max_pixels`
    canvas pixels; returns them and the number of trunk passes."""
    import torch

    width, height = size
    s = cfg.stride
    if width % s or height % s:
        raise ValueError(f"canvas sides must be multiples of the stride {s}, got {width}x{height}")
    rows, cols = height // s, width // s
    halo = halo_px(cfg) // s
    side = max(int(math.sqrt(max_pixels)) // s, 2 * halo + 8)  # at least 8 kept cells a side
    core = side - 2 * halo
    reduced: Any = None
    hs: list[Any] | None = None
    passes = 0
    for r0, r1 in tile_spans(rows, core):
        for c0, c1 in tile_spans(cols, core):
            raise_if_cancelled(cancel)
            t0, t1 = max(0, r0 - halo), min(rows, r1 + halo)
            l0, l1 = max(0, c0 - halo), min(cols, c1 + halo)
            canvas = pyramid.scaled_view(
                scale, margin - l0 * s, margin - t0 * s, (l1 - l0) * s, (t1 - t0) * s
            )
            (lf,) = compute_features(net, cfg, [canvas], device, refine, bf16)
            passes += 1
            if reduced is None:
                reduced = torch.empty(
                    (lf.reduced.shape[0], rows, cols),
                    dtype=lf.reduced.dtype,
                    device=lf.reduced.device,
                )
                if lf.hs is not None:
                    hs = [
                        torch.empty(
                            (h.shape[0], rows * 2**k, cols * 2**k), dtype=h.dtype, device=h.device
                        )
                        for k, h in enumerate(lf.hs)
                    ]
            a, b = r0 - t0, c0 - l0
            reduced[:, r0:r1, c0:c1] = lf.reduced[:, a : a + r1 - r0, b : b + c1 - c0]
            if hs is not None and lf.hs is not None:
                for k, (dst, src) in enumerate(zip(hs, lf.hs, strict=True)):
                    f = 2**k
                    dst[:, r0 * f : r1 * f, c0 * f : c1 * f] = src[
                        :, a * f : (a + r1 - r0) * f, b * f : (b + c1 - c0) * f
                    ]
            del lf, canvas
    return LevelFeatures(scale, float(margin), float(margin), reduced, hs), passes
