"""The DeepMask / SharpMask architecture as plain data (no torch here).

The published network: a ResNet-50 trunk up to layer3 (stride 16, 1024 channels) on a 192x192 input,
a one-cell border crop (the 16 px of context on each side), a 1x1 conv to 128 channels, ReLU, a
10x10 conv to a 512-d embedding, a mask head 512 -> 56*56 (upsampled to the 160 window) and a score
head. `DeepMaskConfig()` is that network; `tiny_config()` is a narrow, shallow member of the same
family (bottleneck ResNet trunk, stride 16, same heads) for fast tests.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError

#: Padding of the trunk's 3x3 and 7x7 convolutions. "zeros": torchvision's. "reflect": the PyTorch
#: port (reflection for 3x3, symmetric for the 7x7 stem). "symmetric": the Torch7 original (mirror
#: including the edge, i.e. replicate for 1 px, symmetric for the 3 px of the stem).
PADDINGS = ("zeros", "reflect", "symmetric")

#: ImageNet statistics the trunk expects (RGB, on 0..1 pixels).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The grey that fills canvases and training crops outside the image: 0.5 on the 0..1 scale, as the
#: published code pads (facebookresearch/deepmask `InferDeepMask.lua` `inpPad:fill(.5)` and
#: `DataSampler.lua` `cropTensor(inp, bbox, 0.5)` / `imgPad:fill(.5)`; the PyTorch port's
#: `tools/InferDeepMask.py` `ConstantPad2d(bw, 0.5)`). Our canvases are uint8, so 0.5 becomes
#: 128/255 = 0.502 (the same 1/510 rounding every resampled image pixel gets).
GREY_RGB = (128, 128, 128)

#: Grey margin (canvas pixels) around the scaled image in whole-image canvases: half the 160 px
#: window, the published `bw = iSz/2` (`InferDeepMask.lua`; the port's `iSz // 2`).
PUBLISHED_MARGIN_PX = 80

#: Mask threshold of the published inference: a pixel is kept when its probability is above 0.2
#: (`computeProposals.lua` and `evalPerImage.lua` call `infer:getTopProps(.2, h, w)`, which
#: `InferDeepMask.lua` turns into the logit cut log(0.2/0.8); the PyTorch port's
#: `tools/computeProposals.py` passes the same 0.2).
PUBLISHED_MASK_THRESHOLD = 0.2
#: Mask threshold for models trained here: the training loss is a logistic loss on 0/1 labels, so
#: p = 0.5 is its decision boundary. A model may record its own value as ``meta["mask_threshold"]``.
TRAINED_MASK_THRESHOLD = 0.5


def mask_threshold_of(meta: dict[str, Any]) -> tuple[float, str]:
    """The mask threshold for a model with this metadata, and where the value comes from.

    Published files converted from Torch7 or the PyTorch port get the published 0.2; models trained
    here 0.5; a value recorded in the metadata wins over both.
    """
    recorded = meta.get("mask_threshold")
    if isinstance(recorded, (int, float)) and 0.0 < float(recorded) < 1.0:
        return float(recorded), str(meta.get("mask_threshold_source") or "recorded with the model")
    if meta.get("converted_from") in ("t7", "pth-port"):
        return PUBLISHED_MASK_THRESHOLD, "published inference (computeProposals.lua, 0.2)"
    return TRAINED_MASK_THRESHOLD, "trained here (logistic loss boundary, 0.5)"


@dataclass(frozen=True)
class DeepMaskConfig:
    """Sizes of one DeepMask network. All sizes in input pixels unless said otherwise.

    `input_size`: the square crop the network sees (window plus context on each side).
    `window`: the central part its mask covers. `mask_size`: side of the mask head's output.
    `label_size`: resolution of the training labels (the mask is upsampled to it for the loss).
    `object_fraction`: the object's longest side as a fraction of the window during training.
    `trunk_width`/`trunk_blocks`: the bottleneck ResNet trunk (64, (3, 4, 6) is ResNet-50 to layer3).
    `sharpmask`: whether the network has the SharpMask refinement (`km`, `ks` its channel counts).
    """

    input_size: int = 192
    window: int = 160
    stride: int = 16
    mask_size: int = 56
    label_size: int = 112
    object_fraction: float = 128 / 224
    trunk_width: int = 64
    trunk_blocks: tuple[int, int, int] = (3, 4, 6)
    neck_channels: int = 128
    embed_channels: int = 512
    score_hidden: int = 1024
    padding: str = "zeros"
    sharpmask: bool = False
    km: int = 32
    ks: int = 32

    def __post_init__(self) -> None:
        problems = []
        if self.padding not in PADDINGS:
            problems.append(f"padding {self.padding!r} is not one of {', '.join(PADDINGS)}")
        if self.window % self.stride or self.input_size % self.stride:
            problems.append("input_size and window must be multiples of the stride")
        if self.input_size <= self.window or (self.input_size - self.window) % (2 * self.stride):
            problems.append("input_size - window must be a positive even number of strides")
        if len(self.trunk_blocks) != 3 or min(self.trunk_blocks) < 1:
            problems.append("trunk_blocks needs three positive block counts")
        if self.sharpmask and (self.km < 16 or self.km % 16 or self.ks < 16 or self.ks % 16):
            problems.append("SharpMask needs km and ks multiples of 16")
        if not 0.1 <= self.object_fraction <= 1.0:
            problems.append("object_fraction must lie in [0.1, 1]")
        if problems:
            raise InputError("invalid DeepMask configuration: " + "; ".join(problems))
        object.__setattr__(self, "trunk_blocks", tuple(int(b) for b in self.trunk_blocks))

    @property
    def fsz(self) -> int:
        """Cells of the window at the trunk's stride (10 for the published network)."""
        return self.window // self.stride

    @property
    def context(self) -> int:
        """Input pixels of context on each side of the window (16)."""
        return (self.input_size - self.window) // 2

    @property
    def context_cells(self) -> int:
        return self.context // self.stride

    @property
    def trunk_channels(self) -> tuple[int, int, int, int]:
        """Channels after the stem, layer1, layer2 and layer3 (64, 256, 512, 1024)."""
        w = self.trunk_width
        return (w, 4 * w, 8 * w, 16 * w)

    @property
    def object_size(self) -> float:
        """The object's longest side inside the window, in input pixels (about 91)."""
        return self.window * self.object_fraction

    def with_sharpmask(self, on: bool = True) -> DeepMaskConfig:
        return DeepMaskConfig(**{**self.to_dict(), "sharpmask": on})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trunk_blocks"] = list(self.trunk_blocks)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepMaskConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown DeepMask configuration keys: {', '.join(unknown)}")
        values = dict(data)
        if "trunk_blocks" in values:
            values["trunk_blocks"] = tuple(values["trunk_blocks"])
        return cls(**values)


def tiny_config(**overrides: Any) -> DeepMaskConfig:
    """A small network of the same family (for tests): 112 input, 80 window, 16-wide trunk."""
    base = dict(
        input_size=112,
        window=80,
        mask_size=28,
        label_size=56,
        trunk_width=16,
        trunk_blocks=(1, 1, 1),
        neck_channels=32,
        embed_channels=128,
        score_hidden=128,
        km=16,
        ks=16,
    )
    base.update(overrides)
    return DeepMaskConfig(**base)  # type: ignore[arg-type]


def infer_config(state: dict[str, Any], padding: str, path: Path | None = None) -> DeepMaskConfig:
    """The architecture whose state dict has these keys and shapes."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise InputError(f"not a DeepMask network: the weight {key!r} is missing", path)
        return tuple(state[key].shape)

    width = shape("trunk.0.weight")[0]
    blocks = []
    for stage in (4, 5, 6):
        found = {int(m.group(1)) for k in state if (m := re.match(rf"^trunk\.{stage}\.(\d+)\.", k))}
        if not found:
            raise InputError(f"not a DeepMask network: trunk layer {stage - 3} is missing", path)
        blocks.append(max(found) + 1)
    values: dict[str, Any] = dict(trunk_width=width, trunk_blocks=tuple(blocks), padding=padding)
    if "neck.2.weight" in state:
        embed, neck, fsz, _ = shape("neck.2.weight")
        mask_out = shape("mask_head.weight")[0]
        mask_size = math.isqrt(mask_out)
        if mask_size * mask_size != mask_out:
            raise InputError(f"mask head has {mask_out} outputs, not a square mask", path)
        values.update(
            window=fsz * 16,
            input_size=fsz * 16 + 32,
            neck_channels=neck,
            embed_channels=embed,
            mask_size=mask_size,
            label_size=2 * mask_size,
            score_hidden=shape("score_head.1.weight")[0],
        )
        if "refine.v0.weight" in state:
            values.update(
                sharpmask=True,
                km=shape("refine.v0.weight")[0] // (fsz * fsz),
                ks=2 * shape("refine.h0.4.weight")[0],
            )
    try:
        return DeepMaskConfig(**values)
    except InputError as exc:
        raise InputError(str(exc), path) from exc
