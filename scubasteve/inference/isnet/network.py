"""IS-Net (Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV 2022) in PyTorch.

Built from stock modules by functions, as the DeepMask network is (ADR 0200): the network is a
`torch.nn.ModuleDict` whose keys follow the DIS repository's module paths (``conv_in``,
``stage1`` .. ``stage6``, ``stage5d`` .. ``stage1d``, ``side1`` .. ``side6``; inside a stage
``rebnconvin``, ``rebnconv1`` .., ``rebnconv1d`` ..; inside those ``conv_s1``), so the published
weights map onto it by name. Batch norm is folded into each convolution's weight and bias (the
published ONNX files come that way, and DIS's own `.pth` files are folded when read), so every
"REBNCONV" is a 3x3 convolution with bias followed by a ReLU.

The network is fully convolutional: any input size works (sides that are not multiples of 32
are handled by ceil-mode pooling and resizing to the skip connection's size, as in DIS). Input:
(B, 3, H, W) float, RGB scaled as ``pixel / 255 - 0.5``. Output of `forward`: the logits of the
side outputs asked for, each (B, 1, H, W); side 1 is the finest and the one DIS uses.
torch is imported inside the functions only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Residual U-blocks: name -> (depth, in, mid, out). Depth 4..7 is an RSU-L with pooling;
#: 0 marks RSU-4F, which widens its receptive field by dilation instead of pooling.
STAGES: dict[str, tuple[int, int, int, int]] = {
    "stage1": (7, 64, 32, 64),
    "stage2": (6, 64, 32, 128),
    "stage3": (5, 128, 64, 256),
    "stage4": (4, 256, 128, 512),
    "stage5": (0, 512, 256, 512),
    "stage6": (0, 512, 256, 512),
    "stage5d": (0, 1024, 256, 512),
    "stage4d": (4, 1024, 128, 256),
    "stage3d": (5, 512, 64, 128),
    "stage2d": (6, 256, 32, 64),
    "stage1d": (7, 128, 16, 64),
}
#: Side output heads: name -> input channels (decoder stages 1d..5d, then stage 6).
SIDES: dict[str, int] = {
    "side1": 64,
    "side2": 64,
    "side3": 128,
    "side4": 256,
    "side5": 512,
    "side6": 512,
}
#: The dilation of each RSU-4F convolution.
_DILATIONS_4F = {"rebnconv2": 2, "rebnconv3": 4, "rebnconv4": 8, "rebnconv3d": 4, "rebnconv2d": 2}


def conv_names(depth: int) -> list[tuple[str, bool, int]]:
    """The convolutions of one stage in order: (name, takes a concatenation, dilation)."""
    levels = 4 if depth == 0 else depth
    names: list[tuple[str, bool, int]] = [("rebnconvin", False, 1)]
    for i in range(1, levels + 1):
        dil = _DILATIONS_4F.get(f"rebnconv{i}", 1) if depth == 0 else (2 if i == levels else 1)
        names.append((f"rebnconv{i}", False, dil))
    for i in range(levels - 1, 0, -1):
        dil = _DILATIONS_4F.get(f"rebnconv{i}d", 1) if depth == 0 else 1
        names.append((f"rebnconv{i}d", True, dil))
    return names


def _stage(depth: int, cin: int, mid: int, cout: int) -> Any:
    from collections import OrderedDict

    from torch import nn

    convs = nn.ModuleDict()
    for name, concat, dil in conv_names(depth):
        if name == "rebnconvin":
            a, b = cin, cout
        elif name == "rebnconv1":
            a, b = cout, mid
        elif name == "rebnconv1d":
            a, b = 2 * mid, cout
        else:
            a, b = (2 * mid if concat else mid), mid
        conv = nn.Conv2d(a, b, 3, padding=dil, dilation=dil)
        convs[name] = nn.Sequential(OrderedDict(conv_s1=conv, relu_s1=nn.ReLU(inplace=True)))
    return convs


def build_isnet() -> Any:
    """A freshly initialised IS-Net (batch norm folded: convolutions with bias) as a ModuleDict."""
    from torch import nn

    net = nn.ModuleDict()
    net["conv_in"] = nn.Conv2d(3, 64, 3, stride=2, padding=1)
    for name, spec in STAGES.items():
        net[name] = _stage(*spec)
    for name, channels in SIDES.items():
        net[name] = nn.Conv2d(channels, 1, 3, padding=1)
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
    return d + hxin


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
        d = run_stage(
            net[f"stage{i}d"], STAGES[f"stage{i}d"][0], torch.cat((_resize_like(d, skip), skip), 1)
        )
        dec[i] = d
    return [_resize_like(net[f"side{s}"](dec[s]), x) for s in sides]
