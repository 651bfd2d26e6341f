"""DeepMask and SharpMask networks, built from stock torch modules by builder functions.

No `nn.Module` subclass is defined here: a network is a `torch.nn.ModuleDict` of standard parts
(`trunk`, `neck`, `mask_head`, `score_head`, optionally `refine`) and the functions below run it.
torch and torchvision are imported inside the functions, so importing this module stays light.

State-dict keys (our own format): ``trunk.0`` stem conv, ``trunk.1`` its batch norm, ``trunk.4/5/6``
torchvision-style bottleneck layers 1-3; ``neck.0`` 1x1 conv to 128, ``neck.2`` the window-sized conv
to 512; ``mask_head`` 1x1 conv 512 -> mask_size**2; ``score_head.1`` and ``score_head.4`` the two
score layers; ``refine.v0`` .. ``refine.v4``, ``refine.h0`` .. ``refine.h3`` and ``refine.final`` the
SharpMask refinement.

Tensors: images are (B, 3, H, W) float32, ImageNet-normalised RGB. Mask logits are (B, m, m) with
row-major cells covering the window; score logits are (B,).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from scubasteve.inference.deepmask.config import DeepMaskConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Where the SharpMask skip features come from, top-down: cropped layer3, layer2, layer1, stem.
#: (input channels of each horizontal net's first conv, its hidden width)
_HORIZONTAL_WIDTHS = ((3, 64), (2, 64), (1, 64), (0, 32))


PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def _conv_padding_mode(cfg: DeepMaskConfig) -> PaddingMode:
    # Torch7's symmetric padding of 1 px repeats the edge pixel, which is 'replicate'.
    modes: dict[str, PaddingMode] = {
        "zeros": "zeros", "reflect": "reflect", "symmetric": "replicate"
    }  # fmt: skip
    return modes[cfg.padding]


def build_network(cfg: DeepMaskConfig) -> Any:
    """A freshly initialised DeepMask (or SharpMask when `cfg.sharpmask`) as a `nn.ModuleDict`."""
    import torch
    from torch import nn
    from torchvision.models.resnet import Bottleneck

    w = cfg.trunk_width
    stem = nn.Conv2d(3, w, 7, stride=2, padding=3 if cfg.padding == "zeros" else 0, bias=False)
    layers: list[nn.Module] = [stem, nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    inplanes = w
    for i, blocks in enumerate(cfg.trunk_blocks):
        planes, stride = w * 2**i, 1 if i == 0 else 2
        down = nn.Sequential(
            nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * 4),
        )
        stage = [Bottleneck(inplanes, planes, stride, down)]
        inplanes = planes * 4
        stage += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
        layers.append(nn.Sequential(*stage))
    trunk = nn.Sequential(*layers)
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in trunk.modules():
        # Residual branches start as identities, which makes training from scratch stable.
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn3.weight)

    neck = nn.Sequential(
        nn.Conv2d(16 * w, cfg.neck_channels, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(cfg.neck_channels, cfg.embed_channels, cfg.fsz),
    )
    mask_head = nn.Conv2d(cfg.embed_channels, cfg.mask_size**2, 1)
    score_head = nn.Sequential(
        nn.Dropout(0.5),
        nn.Conv2d(cfg.embed_channels, cfg.score_hidden, 1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(cfg.score_hidden, 1, 1),
    )
    parts: dict[str, nn.Module] = dict(
        trunk=trunk, neck=neck, mask_head=mask_head, score_head=score_head
    )
    if cfg.sharpmask:
        parts["refine"] = build_refinement(cfg)
    net = nn.ModuleDict(parts)
    set_padding(net, cfg)
    with torch.no_grad():
        if mask_head.bias is not None:  # it has one; the check is for the type checker
            mask_head.bias.zero_()  # masks start undecided (p = 0.5) everywhere
    return net


def build_refinement(cfg: DeepMaskConfig) -> Any:
    """The SharpMask top-down path: vertical nets v0..v4, horizontal nets h0..h3, final conv."""
    from torch import nn

    def conv(cin: int, cout: int) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, 3, padding=1)

    km, ks = cfg.km, cfg.ks
    channels = cfg.trunk_channels
    parts: dict[str, nn.Module] = {
        "v0": nn.Conv2d(cfg.embed_channels, km * cfg.fsz * cfg.fsz, 1),
    }
    for i, (src, hidden) in enumerate(_HORIZONTAL_WIDTHS):
        n_h = ks // 2**i
        parts[f"h{i}"] = nn.Sequential(
            conv(channels[src], hidden),
            nn.ReLU(inplace=True),
            conv(hidden, n_h),
            nn.ReLU(inplace=True),
            conv(n_h, n_h // 2),
        )
        n_v = km // 2**i
        parts[f"v{i + 1}"] = nn.Sequential(
            conv(n_v, n_v), nn.ReLU(inplace=True), conv(n_v, n_v // 2)
        )
    parts["final"] = conv(km // 2 ** len(_HORIZONTAL_WIDTHS), 1)
    return nn.ModuleDict(parts)


def set_padding(net: Any, cfg: DeepMaskConfig) -> None:
    """Give every padded 3x3 conv the padding mode of `cfg` (the stem is padded in `run_trunk`)."""
    from torch import nn

    mode = _conv_padding_mode(cfg)
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.padding != (0, 0):
            m.padding_mode = mode


def symmetric_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Mirror-pad (B, C, H, W) by `p` pixels, repeating the edge (MATLAB's 'symmetric', cba|abcd)."""
    import torch

    x = torch.cat([x[..., :, :p].flip(-1), x, x[..., :, -p:].flip(-1)], dim=-1)
    return torch.cat([x[..., :p, :].flip(-2), x, x[..., -p:, :].flip(-2)], dim=-2)


def run_trunk(
    net: Any, cfg: DeepMaskConfig, x: torch.Tensor, skips: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Trunk features (B, 16w, H/16, W/16) and, if `skips`, [layer2, layer1, stem] outputs."""
    t = net["trunk"]
    if cfg.padding != "zeros":
        x = symmetric_pad(x, 3)
    x = t[2](t[1](t[0](x)))
    stem = x
    x = t[4](t[3](x))
    l1 = x
    x = t[5](x)
    l2 = x
    x = t[6](x)
    return x, ([l2, l1, stem] if skips else [])


def crop_cells(x: torch.Tensor, cells: int) -> torch.Tensor:
    return x[..., cells:-cells, cells:-cells] if cells > 0 else x


def embed(net: Any, features: torch.Tensor) -> torch.Tensor:
    """(B, 512, h, w) embeddings of every window of cropped trunk features (B, 16w, h+9, w+9)."""
    emb: torch.Tensor = net["neck"](features)
    return emb


def mask_logits(net: Any, cfg: DeepMaskConfig, emb: torch.Tensor) -> torch.Tensor:
    """Mask logits (B, h, w, m, m) of embeddings (B, 512, h, w); (B, m, m) when h = w = 1."""
    out: torch.Tensor = net["mask_head"](emb)
    b, _, h, w = out.shape
    out = out.permute(0, 2, 3, 1).reshape(b, h, w, cfg.mask_size, cfg.mask_size)
    return out[:, 0, 0] if h == w == 1 else out


def score_logits(net: Any, emb: torch.Tensor) -> torch.Tensor:
    """Objectness logits (B, h, w) of embeddings (B, 512, h, w); (B,) when h = w = 1."""
    out: torch.Tensor = net["score_head"](emb)[:, 0]
    return out[:, 0, 0] if out.shape[1] == out.shape[2] == 1 else out


def forward_crops(
    net: Any, cfg: DeepMaskConfig, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training-form forward pass on (B, 3, input_size, input_size) crops.

    Returns mask logits (B, mask_size, mask_size) over the central window and scores (B,).
    """
    feats, _ = run_trunk(net, cfg, x)
    emb = embed(net, crop_cells(feats, cfg.context_cells))
    return mask_logits(net, cfg, emb), score_logits(net, emb)


def horizontal(net: Any, maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """Horizontal-net outputs [h0(layer3), h1(layer2), h2(layer1), h3(stem)] of the given maps.

    Training applies them to the maps cropped to the window (as the published SharpMask does);
    the engine applies them to whole canvases once and crops windows out of the result.
    """
    ref = net["refine"]
    return [ref[f"h{i}"](f) for i, f in enumerate(maps)]


def refine(
    net: Any, cfg: DeepMaskConfig, emb: torch.Tensor, hs: list[torch.Tensor]
) -> torch.Tensor:
    """SharpMask logits (B, window, window) from embeddings (B, 512, 1, 1) and the horizontal
    outputs of each window, already cropped to it: hs[i] is (B, ks/2^(i+1), fsz*2^i, fsz*2^i)."""
    import torch.nn.functional as F

    ref = net["refine"]
    b = emb.shape[0]
    cur = ref["v0"](emb).reshape(b, cfg.km, cfg.fsz, cfg.fsz)
    for i, h in enumerate(hs):
        cur = F.relu(h + ref[f"v{i + 1}"](cur))
        cur = F.interpolate(cur, scale_factor=2, mode="nearest")
    refined: torch.Tensor = ref["final"](cur)[:, 0]
    return refined


def forward_sharpmask(
    net: Any, cfg: DeepMaskConfig, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SharpMask on (B, 3, input_size, input_size) crops: mask logits (B, window, window) and
    scores (B,)."""
    feats, skips = run_trunk(net, cfg, x, skips=True)
    c = cfg.context_cells
    maps = [crop_cells(f, c * 2**i) for i, f in enumerate([feats, *skips])]
    emb = embed(net, maps[0])
    return refine(net, cfg, emb, horizontal(net, maps)), score_logits(net, emb)


def normalise(images: Any, device: Any = None) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB (numpy or tensor) -> (B, 3, H, W) float32 ImageNet-normalised."""
    import torch

    from scubasteve.inference.deepmask.config import IMAGENET_MEAN, IMAGENET_STD

    t = torch.as_tensor(images, device=device)
    if t.ndim == 3:
        t = t[None]
    t = t.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=t.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=t.device).view(1, 3, 1, 1)
    return t.sub_(mean).div_(std)
