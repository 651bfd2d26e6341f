"""Convert the original Torch7 DeepMask / SharpMask (and the ResNet-50 they start from) to our layout.

The `.t7` file is read with `torchfile` into `TorchObject`s (attributes of the Lua modules, tensors as
numpy arrays). The published files were saved from the GPU, so their tensors are `torch.CudaTensor`s
(read like float tensors; `register_cuda_readers` adds the types `torchfile` lacks). The trunk is an
``nn.Sequential``: stem conv (wrapped with its padding), frozen batch norm (``nn.SpatialConstDiagonal``
or ``inn.ConstAffine``: a, b) or ``nn.SpatialBatchNormalization``, ReLU, max-pool, then
residual stages (blocks of ``ConcatTable(branch, shortcut)``, ``CAddTable``, ``ReLU``) and, for
DeepMask, a border crop, a 1x1 conv, ReLU, ``View`` and ``Linear(128*10*10, 512)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.checkpoint import LoadedWeights
from scubasteve.inference.deepmask.config import DeepMaskConfig, infer_config

BN_EPS = 1e-5
_CONVS = ("nn.SpatialConvolution", "cudnn.SpatialConvolution", "nn.SpatialConvolutionMM")
#: Frozen batch norms (y = a * x + b): the original code's `nn.SpatialConstDiagonal`
#: (`modelUtils.lua`) and, in files written by today's upstream code, `inn.ConstAffine` from
#: szagoruyko/imagine-nn (`utils.lua` `BNtoFixed`, a and b as 1-D tensors).
_CONST_AFFINE = ("nn.SpatialConstDiagonal", "inn.ConstAffine")
_BNS = (
    *_CONST_AFFINE,
    "nn.SpatialBatchNormalization",
    "cudnn.SpatialBatchNormalization",
)
_PADS = {
    "nn.SpatialSymmetricPadding": "symmetric",
    "nn.SpatialReflectionPadding": "reflect",
    "nn.SpatialReplicationPadding": "symmetric",
}


class _Bad(Exception):
    """A structural problem, turned into an InputError naming the file."""


def tname(obj: Any) -> str:
    fn = getattr(obj, "torch_typename", None)
    if not callable(fn):
        return type(obj).__name__
    name = fn()
    return name.decode("latin-1") if isinstance(name, bytes) else str(name)


def field_of(obj: Any, key: str) -> Any:
    """A field of a Torch7 object or Lua table (torchfile keeps string keys as bytes)."""
    if obj is None:
        return None
    for k in (key, key.encode()):
        try:
            value = obj[k]
        except (KeyError, TypeError, IndexError, AttributeError):
            continue
        if value is not None:
            return value
    return None


def children(obj: Any) -> list[Any]:
    mods = field_of(obj, "modules")
    if mods is None:
        return []
    if isinstance(mods, dict):
        return [mods[k] for k in sorted(mods)]
    return list(mods)


def _numbered(table: Any) -> list[Any]:
    """A Lua table indexed 0..n or 1..n as a list in index order."""
    if isinstance(table, dict):
        return [table[k] for k in sorted(k for k in table if isinstance(k, int))]
    return list(table or [])


def _array(obj: Any, key: str) -> np.ndarray:
    value = field_of(obj, key)
    if not isinstance(value, np.ndarray) or value.size == 0:
        raise _Bad(f"{tname(obj)} has no {key} tensor")
    return np.ascontiguousarray(value, dtype=np.float32)


def _unwrap(mod: Any) -> tuple[Any, str | None]:
    """(conv, padding kind) of a conv or of Sequential(padding, conv)."""
    if tname(mod) in _CONVS:
        return mod, "zeros" if int(field_of(mod, "padW") or 0) > 0 else None
    kids = children(mod)
    if tname(mod) == "nn.Sequential" and len(kids) == 2 and tname(kids[1]) in _CONVS:
        return kids[1], _PADS.get(tname(kids[0]), "zeros")
    raise _Bad(f"expected a convolution, found {tname(mod)}")


def _conv(mod: Any) -> tuple[np.ndarray, np.ndarray | None]:
    n_out, n_in = int(field_of(mod, "nOutputPlane")), int(field_of(mod, "nInputPlane"))
    kh, kw = int(field_of(mod, "kH")), int(field_of(mod, "kW"))
    weight = _array(mod, "weight")
    if weight.size != n_out * n_in * kh * kw:
        raise _Bad(f"a {kh}x{kw} conv {n_in}->{n_out} with {weight.size} weights")
    bias = field_of(mod, "bias")
    bias = (
        np.asarray(bias, dtype=np.float32).reshape(n_out)
        if isinstance(bias, np.ndarray) and bias.size
        else None
    )
    return weight.reshape(n_out, n_in, kh, kw), bias


def _linear(mod: Any) -> tuple[np.ndarray, np.ndarray]:
    if tname(mod) in _CONVS:
        w, b = _conv(mod)
        return w.reshape(w.shape[0], -1), (b if b is not None else np.zeros(w.shape[0], np.float32))
    if tname(mod) != "nn.Linear":
        raise _Bad(f"expected nn.Linear, found {tname(mod)}")
    return _array(mod, "weight"), _array(mod, "bias").reshape(-1)


def _bn(mod: Any, conv_bias: np.ndarray | None) -> dict[str, np.ndarray]:
    """Our BatchNorm2d tensors for a Torch7 frozen or running batch norm after a conv with bias."""
    kind = tname(mod)
    if kind in _CONST_AFFINE:
        a, b = _array(mod, "a").reshape(-1), _array(mod, "b").reshape(-1)
        mean, var = np.zeros_like(a), np.full_like(a, 1.0 - BN_EPS)
        weight, bias = a, b
    elif kind in _BNS:
        mean = _array(mod, "running_mean").reshape(-1)
        eps = float(field_of(mod, "eps") or BN_EPS)
        if isinstance(field_of(mod, "running_var"), np.ndarray):
            var = _array(mod, "running_var").reshape(-1)
        else:
            var = _array(mod, "running_std").reshape(-1) ** -2.0 - eps
        # Our eps differs from the file's: keep (var + eps) unchanged.
        var = var + eps - BN_EPS
        has_affine = isinstance(field_of(mod, "weight"), np.ndarray)
        weight = _array(mod, "weight").reshape(-1) if has_affine else np.ones_like(mean)
        bias = _array(mod, "bias").reshape(-1) if has_affine else np.zeros_like(mean)
    else:
        raise _Bad(f"expected a batch norm, found {kind}")
    if conv_bias is not None:
        mean = mean - conv_bias  # BN(x + b) with mean m equals BN(x) with mean m - b
    return {"weight": weight, "bias": bias, "running_mean": mean, "running_var": var}


def _put_conv_bn(
    out: dict[str, np.ndarray], prefix_conv: str, prefix_bn: str, conv: Any, bn: Any
) -> None:
    w, b = _conv(conv)
    out[f"{prefix_conv}.weight"] = w
    for k, v in _bn(bn, b).items():
        out[f"{prefix_bn}.{k}"] = v


def _is_stage(mod: Any) -> bool:
    kids = children(mod)
    return (
        tname(mod) == "nn.Sequential"
        and bool(kids)
        and tname(kids[0]) == "nn.Sequential"
        and bool(children(kids[0]))
        and tname(children(kids[0])[0]) == "nn.ConcatTable"
    )


def _stage(out: dict[str, np.ndarray], index: int, stage: Any, paddings: set[str]) -> None:
    for b, block in enumerate(children(stage)):
        parts = children(block)
        if (
            len(parts) < 2
            or tname(parts[0]) != "nn.ConcatTable"
            or tname(parts[1]) != "nn.CAddTable"
        ):
            raise _Bad(f"residual block {b} of stage {index - 3} is not ConcatTable + CAddTable")
        branch, shortcut = children(parts[0])[:2]
        convs, bns = [], []
        for m in children(branch):
            if tname(m) in _BNS:
                bns.append(m)
            elif tname(m) in _CONVS or tname(m) == "nn.Sequential":
                conv, pad = _unwrap(m)
                if pad:
                    paddings.add(pad)
                convs.append(conv)
        if len(convs) != 3 or len(bns) != 3:
            raise _Bad(f"block {b} of stage {index - 3} is not a bottleneck (3 convs + 3 norms)")
        p = f"trunk.{index}.{b}"
        for j, (c, n) in enumerate(zip(convs, bns, strict=True), start=1):
            _put_conv_bn(out, f"{p}.conv{j}", f"{p}.bn{j}", c, n)
        if tname(shortcut) == "nn.Sequential":
            sc = children(shortcut)
            _put_conv_bn(out, f"{p}.downsample.0", f"{p}.downsample.1", sc[0], sc[1])
        elif tname(shortcut) != "nn.Identity":
            raise _Bad(f"unsupported shortcut {tname(shortcut)} in stage {index - 3}")


def _trunk(trunk: Any) -> tuple[dict[str, np.ndarray], str, list[Any]]:
    """Trunk tensors, its padding kind, and the modules after layer3."""
    mods = children(trunk)
    if len(mods) < 7:
        raise _Bad(f"{tname(trunk)} with {len(mods)} modules is not a ResNet trunk")
    out: dict[str, np.ndarray] = {}
    stem, stem_pad = _unwrap(mods[0])
    if int(field_of(stem, "kW") or 0) != 7:
        raise _Bad("the first layer is not the 7x7 ResNet stem")
    _put_conv_bn(out, "trunk.0", "trunk.1", stem, mods[1])
    stages = [i for i, m in enumerate(mods) if _is_stage(m)]
    if len(stages) < 3:
        raise _Bad(f"found {len(stages)} residual stages, a ResNet trunk has at least 3")
    paddings: set[str] = set()
    for index, i in zip((4, 5, 6), stages[:3], strict=True):
        _stage(out, index, mods[i], paddings)
    if len(paddings) > 1:
        raise _Bad(f"mixed padding kinds {sorted(paddings)} in one trunk")
    padding = paddings.pop() if paddings else (stem_pad or "zeros")
    if padding != "zeros" and stem_pad in (None, "zeros"):
        raise _Bad("the stem is zero-padded but the 3x3 convs are mirror-padded")
    return out, padding, mods[stages[2] + 1 :]


def _neck(out: dict[str, np.ndarray], rest: list[Any], trunk_width: int) -> int:
    """Fill neck.0 / neck.2 from the modules after layer3; returns fsz."""
    convs = [m for m in rest if tname(m) in _CONVS]
    linears = [m for m in rest if tname(m) == "nn.Linear"]
    if not convs or (not linears and len(convs) < 2):
        raise _Bad("no 1x1 conv and 512-d layer after layer3 (not a DeepMask trunk)")
    w0, b0 = _conv(convs[0])
    if w0.shape[1] != 16 * trunk_width or w0.shape[2:] != (1, 1):
        raise _Bad(f"the layer after layer3 is a {w0.shape} conv, not 1x1 from {16 * trunk_width}")
    out["neck.0.weight"], out["neck.0.bias"] = w0, _bias(b0, w0.shape[0])
    w2, b2 = _linear(linears[0] if linears else convs[1])
    fsz = math.isqrt(w2.shape[1] // w0.shape[0])
    if fsz * fsz * w0.shape[0] != w2.shape[1]:
        raise _Bad(f"the 512-d layer has {w2.shape[1]} inputs, not 128 x fSz x fSz")
    out["neck.2.weight"] = w2.reshape(w2.shape[0], w0.shape[0], fsz, fsz)
    out["neck.2.bias"] = b2
    return fsz


def _bias(b: np.ndarray | None, n: int) -> np.ndarray:
    return b if b is not None else np.zeros(n, np.float32)


def _linears(mod: Any) -> list[Any]:
    found = []
    if tname(mod) == "nn.Linear" or tname(mod) in _CONVS:
        return [mod]
    for m in children(mod):
        found += _linears(m)
    return found


def _heads(out: dict[str, np.ndarray], model: Any) -> None:
    masks = _linears(field_of(model, "maskBranch") or field_of(model, "maskBranchDM"))
    scores = _linears(field_of(model, "scoreBranch"))
    if not masks or len(scores) != 2:
        raise _Bad("mask or score branch missing or not of the DeepMask form")
    w, b = _linear(masks[0])
    out["mask_head.weight"], out["mask_head.bias"] = w[:, :, None, None], b
    for key, mod in zip(("score_head.1", "score_head.4"), scores, strict=True):
        w, b = _linear(mod)
        out[f"{key}.weight"], out[f"{key}.bias"] = w[:, :, None, None], b


def _refinement(out: dict[str, np.ndarray], model: Any) -> None:
    refs = _numbered(field_of(model, "refs"))
    if len(refs) != 5:
        raise _Bad(f"SharpMask with {len(refs)} refinement modules (expected 5)")
    w, b = _linear(_linears(refs[0])[0])
    out["refine.v0.weight"], out["refine.v0.bias"] = w[:, :, None, None], b
    for k in range(1, 5):
        parts = children(refs[k])
        if not parts or tname(parts[0]) != "nn.ParallelTable":
            raise _Bad(f"refinement {k} does not start with a ParallelTable")
        neth, netv = children(parts[0])[:2]
        for name, net, n in ((f"refine.h{k - 1}", neth, 3), (f"refine.v{k}", netv, 2)):
            convs = [m for m in children(net) if tname(m) in _CONVS]
            if len(convs) != n:
                raise _Bad(f"{name} has {len(convs)} convs, expected {n}")
            for j, c in enumerate(convs):
                cw, cb = _conv(c)
                out[f"{name}.{2 * j}.weight"], out[f"{name}.{2 * j}.bias"] = (
                    cw,
                    _bias(cb, cw.shape[0]),
                )
        if k == 4:
            final = [m for m in parts[1:] if tname(m) in _CONVS]
            if not final:
                raise _Bad("no final conv after the last refinement")
            cw, cb = _conv(final[0])
            out["refine.final.weight"], out["refine.final.bias"] = cw, _bias(cb, cw.shape[0])


def register_cuda_readers() -> None:
    """Teach `torchfile` the CUDA tensor types it does not know (it reads `torch.CudaTensor` and the
    byte/char/short/int/double ones): `torch.CudaLongTensor`, the index type of cunn's max pooling in
    files saved from the GPU. Their bytes are the same as the CPU type's."""
    import torchfile

    for name, dtype in ((b"torch.CudaLongTensor", np.int64),):
        if name not in torchfile.type_handlers:
            torchfile.add_tensor_reader(name, dtype)
    for name, dtype in ((b"torch.CudaLongStorage", np.int64),):
        if name not in torchfile.type_handlers:
            torchfile.add_storage_reader(name, dtype)


def read_t7_model(path: Path) -> LoadedWeights:
    """`LoadedWeights` (our keys, torch tensors) from a Torch7 file; `InputError` otherwise."""
    import torch
    import torchfile

    register_cuda_readers()

    path = Path(path)
    try:
        obj = torchfile.load(str(path))
    except Exception as exc:
        raise InputError(
            f"cannot read it as a Torch7 file: truncated or not a .t7 ({exc})", path
        ) from exc
    model = field_of(obj, "model") if isinstance(obj, dict) else obj
    kind = tname(model)
    try:
        if kind in ("nn.DeepMask", "nn.SharpMask"):
            state, padding, rest = _trunk(field_of(model, "trunk"))
            _neck(state, rest, state["trunk.0.weight"].shape[0])
            _heads(state, model)
            if kind == "nn.SharpMask":
                _refinement(state, model)
            meta: dict[str, Any] = {"converted_from": "t7", "t7_class": kind}
        elif kind == "nn.Sequential":
            state, padding, rest = _trunk(model)
            meta = {"converted_from": "t7", "t7_class": kind, "trunk_only": True}
        else:
            raise _Bad(f"the file holds a {kind}, not a DeepMask, SharpMask or ResNet model")
    except _Bad as exc:
        raise InputError(
            f"a Torch7 file, but not a DeepMask/SharpMask/ResNet-50 model: {exc}", path
        ) from exc
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    config: DeepMaskConfig = infer_config(tensors, padding, path)
    return LoadedWeights(config, tensors, meta, "t7")
