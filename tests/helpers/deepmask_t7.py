"""Test helpers: write genuine Torch7 (.t7) files, and run Torch7 nn module trees as Lua would.

The writer follows Torch7's binary serialisation (type tag, object index, "V 1" version, class name,
then the object; tensors as sizes/strides/offset plus a storage; tables as key/value pairs; longs of
8 bytes as on 64-bit Linux). Like the published models, which were saved from the GPU, tensors are
written as `torch.CudaTensor` / `torch.CudaStorage` (int64 ones as `torch.CudaLongTensor`) unless
`cuda=False`; empty tensors (the `output`/`gradInput` buffers of saved modules) have no storage. The interpreter evaluates a module tree as read back by `torchfile`,
independently of the converter under test, so comparing outputs checks where every tensor went.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class T7Object:
    typename: str
    fields: dict[str, Any] = field(default_factory=dict)


class T7Writer:
    def __init__(self, cuda: bool = True) -> None:
        self.parts: list[bytes] = []
        self.index = 0
        self.cuda = cuda

    def _tensor_names(self, arr: np.ndarray) -> tuple[str, str]:
        kind = "Long" if arr.dtype == np.int64 else ""
        if self.cuda:
            return f"torch.Cuda{kind}Tensor", f"torch.Cuda{kind}Storage"
        kind = kind or "Float"
        return f"torch.{kind}Tensor", f"torch.{kind}Storage"

    def _int(self, v: int) -> None:
        self.parts.append(struct.pack("<i", v))

    def _long(self, v: int) -> None:
        self.parts.append(struct.pack("<q", v))

    def _string(self, s: str | bytes) -> None:
        b = s.encode() if isinstance(s, str) else s
        self._int(len(b))
        self.parts.append(b)

    def _new_index(self) -> int:
        self.index += 1
        return self.index

    def _torch_header(self, typename: str) -> None:
        self._int(4)
        self._int(self._new_index())
        self._string("V 1")
        self._string(typename)

    def write(self, obj: Any) -> None:
        if obj is None:
            self._int(0)
        elif isinstance(obj, bool):
            self._int(5)
            self._int(1 if obj else 0)
        elif isinstance(obj, (int, float)):
            self._int(1)
            self.parts.append(struct.pack("<d", float(obj)))
        elif isinstance(obj, (str, bytes)):
            self._int(2)
            self._string(obj)
        elif isinstance(obj, np.ndarray):
            dtype = np.int64 if obj.dtype == np.int64 else np.float32
            arr = np.ascontiguousarray(obj, dtype=dtype)
            tensor, storage = self._tensor_names(arr)
            self._torch_header(tensor)
            if arr.size == 0:  # an empty tensor: no dimensions, no storage
                self._int(0)
                self._long(1)
                self._int(0)
                return
            self._int(arr.ndim)
            for s in arr.shape:
                self._long(s)
            for s in arr.strides:
                self._long(s // arr.itemsize)
            self._long(1)
            self._torch_header(storage)
            self._long(arr.size)
            self.parts.append(arr.tobytes())
        elif isinstance(obj, T7Object):
            self._torch_header(obj.typename)
            self.write(obj.fields)
        elif isinstance(obj, (list, tuple)):
            self.write({i + 1: v for i, v in enumerate(obj)})
        elif isinstance(obj, dict):
            self._int(3)
            self._int(self._new_index())
            self._int(len(obj))
            for k, v in obj.items():
                self.write(k)
                self.write(v)
        else:
            raise TypeError(f"cannot write {type(obj)}")

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def write_t7(path, obj: Any, cuda: bool = True) -> None:  # type: ignore[no-untyped-def]
    w = T7Writer(cuda)
    w.write(obj)
    path.write_bytes(w.bytes())


# --- building Torch7 module trees -----------------------------------------------------------------


def seq(*mods: T7Object) -> T7Object:
    return T7Object("nn.Sequential", {"modules": list(mods)})


def conv(
    rng, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, bias: bool = True
) -> T7Object:  # type: ignore[no-untyped-def]
    w = rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, size=(cout, cin, k, k)).astype(np.float32)
    f = dict(
        weight=w,
        nInputPlane=cin,
        nOutputPlane=cout,
        kW=k,
        kH=k,
        dW=stride,
        dH=stride,
        padW=pad,
        padH=pad,
        output=np.zeros((0,), np.float32),
        gradInput=np.zeros((0,), np.float32),
    )
    if bias:
        f["bias"] = rng.normal(0, 0.1, size=cout).astype(np.float32)
    return T7Object("cudnn.SpatialConvolution", f)


def sympad(p: int) -> T7Object:
    return T7Object("nn.SpatialSymmetricPadding", dict(pad_l=p, pad_r=p, pad_t=p, pad_b=p))


def padded_conv(rng, cin: int, cout: int, k: int, stride: int = 1, bias: bool = True) -> T7Object:  # type: ignore[no-untyped-def]
    return seq(sympad(k // 2), conv(rng, cin, cout, k, stride, 0, bias))


#: Frozen batch norm of the original code (a, b of shape (1, C, 1, 1)) and of today's upstream code,
#: which folds batch norms into imagine-nn's `inn.ConstAffine` (a, b of shape (C,)).
CONST_DIAGONAL, CONST_AFFINE = "nn.SpatialConstDiagonal", "inn.ConstAffine"


def const_diag(rng, c: int, scale: float = 1.0, kind: str = CONST_DIAGONAL) -> T7Object:  # type: ignore[no-untyped-def]
    shape = (c,) if kind == CONST_AFFINE else (1, c, 1, 1)
    a = (rng.uniform(0.5, 1.5, size=shape) * scale).astype(np.float32)
    b = rng.normal(0, 0.1, size=shape).astype(np.float32)
    return T7Object(kind, dict(a=a, b=b, inplace=True))


def relu() -> T7Object:
    return T7Object("cudnn.ReLU", {})


def linear(rng, nin: int, nout: int) -> T7Object:  # type: ignore[no-untyped-def]
    w = rng.normal(0, (1.0 / nin) ** 0.5, size=(nout, nin)).astype(np.float32)
    return T7Object(
        "nn.Linear", dict(weight=w, bias=rng.normal(0, 0.1, size=nout).astype(np.float32))
    )


def bottleneck(rng, cin: int, planes: int, stride: int, bn: str = CONST_DIAGONAL) -> T7Object:  # type: ignore[no-untyped-def]
    branch = seq(
        conv(rng, cin, planes, 1, bias=False),
        const_diag(rng, planes, kind=bn),
        relu(),
        padded_conv(rng, planes, planes, 3, stride, bias=False),
        const_diag(rng, planes, kind=bn),
        relu(),
        conv(rng, planes, planes * 4, 1, bias=False),
        const_diag(rng, planes * 4, 0.3, kind=bn),
    )
    if cin != planes * 4 or stride != 1:
        shortcut = seq(
            conv(rng, cin, planes * 4, 1, stride, bias=False),
            const_diag(rng, planes * 4, kind=bn),
        )
    else:
        shortcut = T7Object("nn.Identity", {})
    return seq(
        T7Object("nn.ConcatTable", {"modules": [branch, shortcut]}),
        T7Object("nn.CAddTable", {}),
        relu(),
    )


def resnet_trunk(
    rng, width: int, blocks: tuple[int, ...], bn: str = CONST_DIAGONAL
) -> list[T7Object]:  # type: ignore[no-untyped-def]
    mods = [padded_conv(rng, 3, width, 7, 2, bias=True), const_diag(rng, width, kind=bn), relu()]
    # cunn's max pooling keeps its argmax indices: a CudaLongTensor in files saved from the GPU.
    indices = np.zeros((1, width, 2, 2), np.int64)
    mods.append(
        T7Object(
            "nn.SpatialMaxPooling", dict(kW=3, kH=3, dW=2, dH=2, padW=1, padH=1, indices=indices)
        )
    )
    cin = width
    for i, n in enumerate(blocks):
        planes = width * 2**i
        stage = [bottleneck(rng, cin, planes, 1 if i == 0 else 2, bn)]
        cin = planes * 4
        stage += [bottleneck(rng, cin, planes, 1, bn) for _ in range(n - 1)]
        mods.append(seq(*stage))
    return mods


def deepmask_t7(
    rng,
    width: int = 64,
    blocks=(3, 4, 6),
    fsz: int = 10,
    oSz: int = 56,
    sharp_k: int = 0,
    bn: str = CONST_DIAGONAL,
):  # type: ignore[no-untyped-def]
    """The object `torch.save` wrote for DeepMask (or SharpMask when sharp_k = km = ks > 0)."""
    trunk = resnet_trunk(rng, width, blocks, bn)
    trunk += [
        T7Object("nn.SpatialZeroPadding", dict(pad_l=-1, pad_r=-1, pad_t=-1, pad_b=-1)),
        conv(rng, 16 * width, 128, 1),
        relu(),
        T7Object("nn.View", dict(size=np.array([128 * fsz * fsz], np.float32))),
        linear(rng, 128 * fsz * fsz, 512),
    ]
    upsample = seq(
        T7Object("nn.Copy", {}), T7Object("nn.SpatialReSamplingEx", dict(owidth=2 * oSz))
    )
    mask_branch = seq(seq(linear(rng, 512, oSz * oSz)), upsample)
    score_branch = seq(
        T7Object("nn.Dropout", dict(p=0.5)),
        linear(rng, 512, 1024),
        T7Object("nn.Threshold", dict(threshold=0, val=1e-6)),
        T7Object("nn.Dropout", dict(p=0.5)),
        linear(rng, 1024, 1),
    )
    fields: dict[str, Any] = dict(trunk=seq(*trunk), scoreBranch=score_branch, fSz=fsz)
    if not sharp_k:
        fields["maskBranch"] = mask_branch
        return {"model": T7Object("nn.DeepMask", fields), "config": {"iSz": 16 * fsz}}
    fields["maskBranchDM"] = mask_branch
    km = ks = sharp_k
    refs: dict[int, Any] = {0: seq(linear(rng, 512, fsz * fsz * km), T7Object("nn.View", {}))}
    hidden = ((16 * width, 64, 0), (8 * width, 64, -2), (4 * width, 64, -4), (width, 32, -8))
    for k in range(1, 5):
        nhu1, nhu2, crop = hidden[k - 1]
        n_h, n_v = ks // 2 ** (k - 1), km // 2 ** (k - 1)
        h = (
            [
                T7Object(
                    "nn.SpatialZeroPadding", dict(pad_l=crop, pad_r=crop, pad_t=crop, pad_b=crop)
                )
            ]
            if crop
            else []
        )
        h += [
            sympad(1),
            conv(rng, nhu1, nhu2, 3),
            relu(),
            sympad(1),
            conv(rng, nhu2, n_h, 3),
            relu(),
        ]
        h += [sympad(1), conv(rng, n_h, n_h // 2, 3)]
        v = [sympad(1), conv(rng, n_v, n_v, 3), relu(), sympad(1), conv(rng, n_v, n_v // 2, 3)]
        ref = [
            T7Object("nn.ParallelTable", {"modules": [seq(*h), seq(*v)]}),
            T7Object("nn.CAddTable", {}),
        ]
        ref += [relu(), T7Object("nn.SpatialUpSamplingNearest", dict(scale_factor=2))]
        if k == 4:
            ref += [sympad(1), conv(rng, km // 16, 1, 3), T7Object("nn.View", {})]
        refs[k] = seq(*ref)
    fields.update(refs=refs, km=km, ks=ks, skpos=[8, 6, 5, 3])
    return {"model": T7Object("nn.SharpMask", fields), "config": {"iSz": 16 * fsz}}


# --- running them (as read back by torchfile) -----------------------------------------------------


def read_reference(path) -> Any:  # type: ignore[no-untyped-def]
    """`torchfile.load` of a file with CUDA long tensors, independently of the loader under test:
    the readers it lacks are added for this call only, so the converter must bring its own."""
    import torchfile

    added = []
    for name, reader, dtype in (
        (b"torch.CudaLongTensor", torchfile.add_tensor_reader, np.int64),
        (b"torch.CudaLongStorage", torchfile.add_storage_reader, np.int64),
    ):
        if name not in torchfile.type_handlers:
            reader(name, dtype)
            added.append(name)
    try:
        return torchfile.load(str(path))
    finally:
        for name in added:
            torchfile.type_handlers.pop(name, None)


def _name(m: Any) -> str:
    n = m.torch_typename()
    return n.decode() if isinstance(n, bytes) else n


def _kids(m: Any) -> list[Any]:
    mods = m["modules"]
    return [mods[k] for k in sorted(mods)] if isinstance(mods, dict) else list(mods)


def _t(a: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


def _symmetric(x: torch.Tensor, p: int) -> torch.Tensor:
    arr = np.pad(x.numpy(), ((0, 0), (0, 0), (p, p), (p, p)), mode="symmetric")
    return torch.from_numpy(arr)


def run(m: Any, x: Any) -> Any:
    """Evaluate a Torch7 module (eval mode) on a (B, C, H, W) tensor or a list of them."""
    name = _name(m)
    if name == "nn.Sequential":
        for k in _kids(m):
            x = run(k, x)
        return x
    if name == "nn.ConcatTable":
        return [run(k, x) for k in _kids(m)]
    if name == "nn.ParallelTable":
        return [run(k, xi) for k, xi in zip(_kids(m), x, strict=True)]
    if name == "nn.CAddTable":
        return x[0] + x[1]
    if name in ("nn.SpatialConvolution", "cudnn.SpatialConvolution"):
        b = m["bias"]
        return F.conv2d(
            x,
            _t(m["weight"]),
            _t(b) if b is not None else None,
            stride=int(m["dW"]),
            padding=int(m["padW"]),
        )
    if name == "nn.SpatialSymmetricPadding":
        return _symmetric(x, int(m["pad_l"]))
    if name == "nn.SpatialZeroPadding":
        p = -int(m["pad_l"])
        return x[:, :, p:-p, p:-p]
    if name in (CONST_DIAGONAL, CONST_AFFINE):
        return x * _t(m["a"]).reshape(1, -1, 1, 1) + _t(m["b"]).reshape(1, -1, 1, 1)
    if name == "cudnn.ReLU":
        return torch.relu(x)
    if name == "nn.Threshold":
        return torch.where(x > float(m["threshold"]), x, torch.full_like(x, float(m["val"])))
    if name == "nn.SpatialMaxPooling":
        return F.max_pool2d(x, int(m["kW"]), int(m["dW"]), int(m["padW"]))
    if name == "nn.SpatialUpSamplingNearest":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    if name == "nn.View":
        return x.reshape(x.shape[0], -1)
    if name == "nn.Linear":
        return x.reshape(x.shape[0], -1) @ _t(m["weight"]).T + _t(m["bias"])
    if name in ("nn.Dropout", "nn.Identity", "nn.Copy"):
        return x
    raise NotImplementedError(name)


def run_sharpmask(model: Any, x: torch.Tensor) -> torch.Tensor:
    """SharpMask's forward as in SharpMask.lua: refinements fed with trunk outputs 8, 6, 5, 3."""
    outs = []
    for k in _kids(model["trunk"]):
        x = run(k, x)
        outs.append(x)
    refs = model["refs"]
    cur = run(refs[0], x)
    cur = cur.reshape(cur.shape[0], int(model["km"]), int(model["fSz"]), int(model["fSz"]))
    for k, pos in enumerate((8, 6, 5, 3), start=1):
        mods = _kids(refs[k])
        y = run(mods[0], [outs[pos - 1], cur])
        for mod in mods[1:]:
            if _name(mod) == "nn.View":
                break
            y = run(mod, y)
        cur = y
    return cur[:, 0]
