"""IS-Net (Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV 2022) in PyTorch.

Built from stock modules by functions, as the DeepMask network is (ADR 0200): the network is a
`torch.nn.ModuleDict` whose keys follow the DIS repository's module paths (``conv_in``,
``stage1`` .. ``stage6``, ``stage5d`` .. ``stage1d``, ``side1`` .. ``side6``; inside a stage
``rebnconvin``, ``rebnconv1`` .., ``rebnconv1d`` ..; inside those ``conv_s1``), as listed by
`scubasteve.weights.isnet_file.conv_layout`, so the published weights map onto it by name. Batch
norm is folded into each convolution's weight and bias, so every "REBNCONV" is a 3x3 convolution
with bias followed by a ReLU.

The network is fully convolutional: any input size works (sides that are not multiples of 32
are handled by ceil-mode pooling and resizing to the skip connection's size, as in DIS). Input:
(B, 3, H, W) float, RGB scaled as ``pixel / 255 - 0.5``. Output of `forward`: the logits of the
side outputs asked for, each (B, 1, H, W); side 1 is the finest and the one DIS uses.
torch is imported inside the functions only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scubasteve.weights.isnet_file import STAGES, conv_layout

if TYPE_CHECKING:  # pragma: no cover
    import torch


def build_isnet(divisor: int = 1) -> Any:
    """A freshly initialised IS-Net (batch norm folded) as a ModuleDict; `divisor` thins every
    layer's channels (1: the published network)."""
    from collections import OrderedDict

    from torch import nn

    net = nn.ModuleDict()
    for spec in conv_layout(divisor):
        conv = nn.Conv2d(
            spec.cin,
            spec.cout,
            3,
            stride=spec.stride,
            padding=spec.dilation,
            dilation=spec.dilation,
        )
        parts = spec.path.split(".")
        if len(parts) == 1:  # conv_in and the side heads
            net[parts[0]] = conv
            continue
        stage, name = parts[0], parts[1]
        if stage not in net:
            net[stage] = nn.ModuleDict()
        block = nn.Sequential(OrderedDict(conv_s1=conv, relu_s1=nn.ReLU(inplace=True)))
        net[stage].add_module(name, block)
    return net


def _resize_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    if x.shape[2:] == like.shape[2:]:
        return x
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


def run_stage(stage: Any, depth: int, x: torch.Tensor) -> torch.Tensor:
    """One residual U-block (RSU-L, or RSU-4F when `depth` is 0)."""
    import torch

    hxin = stage["rebnconvin"](x)
    levels = 4 if depth == 0 else depth
    skips: list[torch.Tensor] = []
    h = hxin
    for i in range(1, levels + 1):
        if depth and 1 < i < levels:
            h = _pool(h)
        h = stage[f"rebnconv{i}"](h)
        skips.append(h)
    d = skips[-1]
    for i in range(levels - 1, 0, -1):
        skip = skips[i - 1]
        d = stage[f"rebnconv{i}d"](torch.cat((_resize_like(d, skip), skip), 1))
    out: torch.Tensor = d + hxin
    return out


def forward(net: Any, x: torch.Tensor, sides: tuple[int, ...] = (1,)) -> list[torch.Tensor]:
    """Logits of the side outputs `sides` (1 = finest), each (B, 1, H, W) at the input's size."""
    import torch

    enc: list[torch.Tensor] = []
    h = net["conv_in"](x)
    for i in range(1, 7):
        if i > 1:
            h = _pool(h)
        h = run_stage(net[f"stage{i}"], STAGES[f"stage{i}"][0], h)
        enc.append(h)
    dec: dict[int, torch.Tensor] = {6: enc[5]}
    d = enc[5]
    for i in range(5, 0, -1):
        skip = enc[i - 1]
        joined = torch.cat((_resize_like(d, skip), skip), 1)
        d = run_stage(net[f"stage{i}d"], STAGES[f"stage{i}d"][0], joined)
        dec[i] = d
    return [_resize_like(net[f"side{s}"](dec[s]), x) for s in sides]
