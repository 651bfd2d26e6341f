"""Reading IS-Net weights: the published ONNX files, DIS's `.pth` state dicts and our own `.pt`.

- **ONNX** (float32 as rembg publishes it, or float16): every ``Conv`` node is named by its module
  path (``/stage1/rebnconvin/conv_s1/Conv``) and has batch norm folded into its weight and bias,
  which are the node's second and third inputs.
- **ONNX, int8** (dynamic quantisation): ``ConvInteger`` nodes (``.../Conv_quant``) with uint8
  weights, a zero point and a scale; the float bias is added after the node. The weights are
  dequantised (``(q - zero_point) * scale``), so the network runs in float with the int8 file's
  rounding of its weights.
- **DIS `.pth`** (xuebinqin/DIS): a state dict with separate batch-norm parameters, folded on read.
- **Ours** (``format: "scubasteve-isnet"``, the container of `scubasteve.inference.checkpoint`): what
  `train isnet` writes, and what published files are converted to once (cached).

Every file is checked against the network's own state dict (names and shapes), so another
network's ONNX or checkpoint is refused with what is wrong. `onnx` and torch are imported inside
the functions.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "scubasteve-isnet"
FORMAT_VERSION = 1
#: Batch-norm epsilon of DIS's networks (PyTorch's default).
BN_EPS = 1e-5


@dataclass
class IsnetWeights:
    """A state dict in our layout (float32 tensors, batch norm folded) and where it came from.

    `meta["source"]` is ``onnx-float32``, ``onnx-float16``, ``onnx-int8``, ``dis-pth`` or
    ``scubasteve-isnet``; models trained here carry their training summary in `meta` too.
    """

    state_dict: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


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
    _check_fits(weights.state_dict, path)
    return weights


def _expected_state() -> dict[str, Any]:
    from scubasteve.inference.isnet.network import build_isnet

    return dict(build_isnet().state_dict())


def _check_fits(state: dict[str, Any], path: Path) -> None:
    from scubasteve.inference.checkpoint import fit_problems

    problems = fit_problems(_expected_state(), state)
    if problems:
        raise InputError(
            "these are not IS-Net weights (the DIS general-use network): " + "; ".join(problems),
            path,
        )


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
    from scubasteve.inference.checkpoint import check_payload, read_payload

    payload = read_payload(path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        payload = check_payload(path, payload, FORMAT, FORMAT_VERSION)
        meta = dict(payload.get("meta") or {})
        meta.setdefault("source", FORMAT)
        return IsnetWeights(_float32(payload["state_dict"]), meta)
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
    from scubasteve.inference.checkpoint import cpu_state, tree_digest, write_payload

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


def load_weights_file(path: str | Path) -> IsnetWeights:
    """Weights of any supported file; published formats are converted once and the result cached.

    Reading a 170 MB ONNX file takes a second or two; the cached `.pt` loads faster and is checked
    by its digest. The cache key is the file's path, size and modification time.
    """
    from scubasteve.core.paths import cache_dir

    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found" if not path.exists() else "not a file", path)
    if sniff(path) == "torch-zip":
        return read_weights(path)
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    cached = cache_dir() / "isnet-converted" / f"{key[:24]}.pt"
    if cached.is_file():
        try:
            return read_weights(cached)
        except InputError as exc:
            log.warning("converted copy unusable, converting again: %s", exc)
    weights = read_weights(path)
    try:
        save_weights(cached, weights.state_dict, weights.meta)
    except OSError as exc:  # a read-only cache folder costs speed, not function
        log.warning("could not cache the converted IS-Net weights: %s", exc)
    return weights


def build_model(weights: IsnetWeights, device: str = "cpu") -> Any:
    """The network with `weights` loaded, in eval mode on `device` (channels-last memory)."""
    import torch

    from scubasteve.inference.isnet.network import build_isnet

    net = build_isnet()
    net.load_state_dict(weights.state_dict, strict=True)
    return net.to(device, memory_format=torch.channels_last).eval()
