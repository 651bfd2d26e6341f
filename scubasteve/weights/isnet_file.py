"""IS-Net weight files: the network's layout, and reading the published files and our own.

The layout (`conv_layout`) names every convolution of IS-Net by its module path in the DIS
repository (``conv_in``, ``stage1.rebnconvin.conv_s1``, ..., ``side1``), with its channels and
dilation; the PyTorch network (`scubasteve.inference.isnet.network`) is built from it, and every
file is checked against it, so that another network's weights are refused with what is wrong.
Batch norm is folded into each convolution's weight and bias.

Files read:

- **ONNX** (float32 as rembg publishes it, or float16): every ``Conv`` node is named by its module
  path (``/stage1/rebnconvin/conv_s1/Conv``), its weight and bias are its second and third inputs.
- **ONNX, int8** (dynamic quantisation): ``ConvInteger`` nodes (``.../Conv_quant``) with uint8
  weights, a zero point and a scale; the float bias is added after the node. The weights are
  dequantised (``(q - zero_point) * scale``), so the network runs in float with the int8 file's
  rounding of its weights.
- **DIS `.pth`** (xuebinqin/DIS): a state dict with separate batch-norm parameters, folded on read.
- **Ours** (``format: "scubasteve-isnet"``, the container of `scubasteve.weights.checkpoint`): what
  `train isnet` writes and what published files are converted to once.

It lives in the weights layer (like the SAM 2 checkpoint reader) so that `models import` can read
a file before installing it. `onnx` and torch are imported inside the functions.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError

FORMAT = "scubasteve-isnet"
FORMAT_VERSION = 1
#: Batch-norm epsilon of DIS's networks (PyTorch's default).
BN_EPS = 1e-5
#: Channel divisors a network can be built with: 1 is the published network; the others are
#: thinner networks of the same layout (tests, the self-test).
DIVISORS = (1, 2, 4, 8, 16)

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


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of the network: module path, channels, dilation and stride (3x3 kernels)."""

    path: str
    cin: int
    cout: int
    dilation: int = 1
    stride: int = 1


def conv_layout(divisor: int = 1) -> list[ConvSpec]:
    """Every convolution of IS-Net in module order, channels divided by `divisor`."""
    if divisor not in DIVISORS:
        raise ValueError(f"channel divisor must be one of {DIVISORS}, got {divisor}")
    d = divisor
    out = [ConvSpec("conv_in", 3, 64 // d, stride=2)]
    for stage, (depth, cin, mid, cout) in STAGES.items():
        cin, mid, cout = cin // d, mid // d, cout // d
        for name, concat, dil in conv_names(depth):
            if name == "rebnconvin":
                a, b = cin, cout
            elif name == "rebnconv1":
                a, b = cout, mid
            elif name == "rebnconv1d":
                a, b = 2 * mid, cout
            else:
                a, b = (2 * mid if concat else mid), mid
            out.append(ConvSpec(f"{stage}.{name}.conv_s1", a, b, dil))
    out += [ConvSpec(name, channels // d, 1) for name, channels in SIDES.items()]
    return out


def expected_shapes(divisor: int = 1) -> dict[str, tuple[int, ...]]:
    """State-dict key -> tensor shape of the network with batch norm folded."""
    shapes: dict[str, tuple[int, ...]] = {}
    for conv in conv_layout(divisor):
        shapes[f"{conv.path}.weight"] = (conv.cout, conv.cin, 3, 3)
        shapes[f"{conv.path}.bias"] = (conv.cout,)
    return shapes


@dataclass
class IsnetWeights:
    """A state dict in our layout (float32 tensors, batch norm folded) and where it came from.

    `meta["source"]` is ``onnx-float32``, ``onnx-float16``, ``onnx-int8``, ``dis-pth`` or
    ``scubasteve-isnet``; models trained here carry their training summary in `meta` too.
    `divisor`: the channel divisor of the layout (1: the published network).
    """

    state_dict: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    divisor: int = 1


def sniff(path: Path) -> str:
    """'torch-zip', 'torch-legacy', 'onnx', 'html', 'empty' or 'unknown' from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "torch-legacy"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"{")):
        return "html" if not text.startswith(b"{") else "unknown"
    # An ONNX ModelProto starts with field 1 (ir_version, varint: 0x08) or, rarely, another
    # low-numbered field; the parser decides.
    if head[0] in (0x08, 0x12, 0x1A, 0x22, 0x3A):
        return "onnx"
    return "unknown"


def read_weights(path: str | Path) -> IsnetWeights:
    """The weights of any supported file, checked against the network (see the module docstring).

    Raises `InputError` naming the file for anything that is not IS-Net weights.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found" if not path.exists() else "not a file", path)
    kind = sniff(path)
    if kind == "empty":
        raise InputError("the file is empty (an interrupted download?)", path)
    if kind == "html":
        raise InputError(
            "this is a web page, not model weights (a download that returned an error page?)", path
        )
    if kind == "onnx" or path.suffix.lower() == ".onnx":
        weights = _read_onnx(path)
    elif kind in ("torch-zip", "torch-legacy"):
        weights = _read_torch(path)
    else:
        raise InputError(
            "not IS-Net weights: expected an ONNX file (isnet-general-use.onnx) or a PyTorch "
            "state dict (DIS's .pth)",
            path,
        )
    _check_fits(weights.state_dict, weights.divisor, path)
    return weights


def _check_fits(state: dict[str, Any], divisor: int, path: Path) -> None:
    from scubasteve.weights.checkpoint import fit_problems

    problems = fit_problems(expected_shapes(divisor), state)
    if problems:
        raise InputError(
            "these are not IS-Net weights (the DIS general-use network): " + "; ".join(problems),
            path,
        )


def weights_file_problem(path: Path) -> str | None:
    """Why a file cannot be installed as IS-Net weights (None when it reads as IS-Net)."""
    try:
        read_weights(path)
    except InputError as exc:
        return exc.problem
    return None


def _module_path(node_name: str) -> str:
    """'/stage1/rebnconvin/conv_s1/Conv' -> 'stage1.rebnconvin.conv_s1'."""
    parts = [p for p in node_name.split("/") if p]
    return ".".join(parts[:-1])


def _read_onnx(path: Path) -> IsnetWeights:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - onnx is a dependency
        raise InputError(f"reading ONNX files needs the onnx package ({exc})", path) from exc
    import numpy as np
    import torch

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: damaged or not ONNX at all
        raise InputError(
            f"cannot read it as an ONNX model: it is truncated, damaged or another kind of file "
            f"({type(exc).__name__})",
            path,
        ) from exc
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}

    def array(name: str) -> np.ndarray:
        if name not in inits:
            raise InputError(f"the ONNX graph has no stored tensor {name!r}", path)
        return np.asarray(numpy_helper.to_array(inits[name]))

    state: dict[str, Any] = {}
    precision = ""
    bias_of: dict[str, str] = {}  # int8 graphs: module path -> float bias tensor name
    for node in graph.node:
        if (
            node.op_type == "Reshape"
            and node.output
            and node.output[0].endswith("/Conv_output_0_bias_reshape_output")
        ):
            bias_of[_module_path(node.output[0])] = node.input[0]
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) >= 3:
            key = _module_path(node.name)
            weight, bias = array(node.input[1]), array(node.input[2])
            precision = precision or ("float16" if weight.dtype == np.float16 else "float32")
        elif node.op_type == "ConvInteger" and len(node.input) >= 4:
            key = _module_path(node.name)
            q = array(node.input[1]).astype(np.float32)
            zero = array(node.input[3]).astype(np.float32)
            scale_name = node.input[1].removesuffix("_quantized") + "_scale"
            scale = array(scale_name).astype(np.float32)
            weight = (q - zero) * scale
            if key not in bias_of:
                raise InputError(f"the int8 graph has no bias for {key}", path)
            bias = array(bias_of[key])
            precision = "int8"
        else:
            continue
        state[f"{key}.weight"] = torch.from_numpy(np.array(weight, dtype=np.float32))
        state[f"{key}.bias"] = torch.from_numpy(np.array(bias.reshape(-1), dtype=np.float32))
    if not state:
        raise InputError("the ONNX graph has no convolutions: it is not IS-Net", path)
    return IsnetWeights(state, {"source": f"onnx-{precision}", "file": path.name})


def _read_torch(path: Path) -> IsnetWeights:
    from scubasteve.weights.checkpoint import check_payload, read_payload

    payload = read_payload(path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        payload = check_payload(path, payload, FORMAT, FORMAT_VERSION)
        meta = dict(payload.get("meta") or {})
        meta.setdefault("source", FORMAT)
        divisor = payload.get("divisor", 1)
        if divisor not in DIVISORS:
            raise InputError(f"unknown channel divisor {divisor!r} in the file", path)
        return IsnetWeights(_float32(payload["state_dict"]), meta, int(divisor))
    if isinstance(payload, dict) and isinstance(payload.get("format"), str):
        raise InputError(f"this is a {payload['format']} file, not IS-Net weights", path)
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not state:
        raise InputError("the file holds no state dict: it is not IS-Net weights", path)
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    return IsnetWeights(fold_batch_norm(state, path), {"source": "dis-pth", "file": path.name})


def _float32(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v.to(torch.float32) for k, v in state.items()}


def fold_batch_norm(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """DIS's state dict (``...conv_s1`` and ``...bn_s1``) with each batch norm folded into its conv."""
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        if not hasattr(value, "dtype"):
            raise InputError(f"entry {key!r} of the state dict is not a tensor", path)
        if ".bn_s1." in key:
            continue
        out[key] = value.to(torch.float32)
    for key in list(out):
        if not key.endswith(".conv_s1.weight"):
            continue
        prefix = key[: -len(".conv_s1.weight")]
        try:
            gamma, beta, mean, var = (
                state[f"{prefix}.bn_s1.{n}"].to(torch.float32)
                for n in ("weight", "bias", "running_mean", "running_var")
            )
        except KeyError:
            continue  # already folded; the fit check says whether it is complete
        scale = gamma / torch.sqrt(var + BN_EPS)
        weight = out[key]
        bias = out.get(f"{prefix}.conv_s1.bias", torch.zeros_like(mean))
        out[key] = weight * scale.view(-1, 1, 1, 1)
        out[f"{prefix}.conv_s1.bias"] = (bias - mean) * scale + beta
    return out


def save_weights(
    path: Path, state_dict: dict[str, Any], meta: dict[str, Any] | None = None
) -> Path:
    """Write weights in our format, atomically; returns `path`."""
    from scubasteve.weights.checkpoint import cpu_state, tree_digest, write_payload

    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": "isnet-dis",
        "meta": dict(meta or {}),
        "state_dict": cpu_state(state_dict),
    }
    payload["sha256"] = tree_digest(payload["state_dict"])
    write_payload(Path(path), payload)
    return Path(path)


def is_isnet_checkpoint(path: Path) -> bool:
    """Whether a file is one of our IS-Net checkpoints, from its pickle's header (cheap)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return bool(names) and FORMAT.encode() in archive.read(names[0])
    except (OSError, zipfile.BadZipFile):
        return False
