"""Read DeepMask weights in the published layouts and convert them to ours.

- The PyTorch port's ``DeepMask.pth.tar`` (foolwood/deepmask-pytorch): ``{"state_dict": ...}`` with a
  ``module.`` prefix, the trunk under ``trunk.0`` with every padded 3x3/7x7 conv wrapped as
  ``Sequential(pad, conv)`` (so ``trunk.0.0.1.weight``), ``trunk.1.0``/``trunk.1.2`` for the 1x1 and
  10x10 convs, ``maskBranch.0.0``, ``scoreBranch.1`` and ``scoreBranch.4``. Its padding is reflection
  (3x3) and symmetric (7x7 stem): the converted config says ``padding="reflect"``.
- The original Torch7 ``model.t7`` of DeepMask or SharpMask (read with `torchfile`): batch norms frozen
  as ``nn.SpatialConstDiagonal`` (a, b), convs wrapped with ``nn.SpatialSymmetricPadding``, the 10x10
  layer stored as ``nn.Linear(12800, 512)``. Converted with ``padding="symmetric"``.
- A Torch7 or torchvision ResNet-50 gives the trunk only (a starting point for training).
- Our own `.pt` (see `checkpoint.py`).

`load_any(path)` sniffs the file and returns `LoadedWeights` in our layout; `convert_file(src, dst)`
writes our format. Every problem becomes an `InputError` naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    LoadedWeights,
    save_weights,
)
from scubasteve.inference.deepmask.config import infer_config
from scubasteve.weights.checkpoint import check_payload, read_payload

#: Eps of our batch norms; Torch7's frozen affine layers become running_var = 1 - eps.
BN_EPS = 1e-5


def sniff_format(path: Path) -> str:
    """'torch-zip', 'torch-legacy', 't7' or 'unknown', from the first bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "torch-legacy"
    if len(head) >= 4 and int.from_bytes(head[:4], "little") in (3, 4):
        return "t7"
    return "unknown"


def load_any(path: str | Path) -> LoadedWeights:
    """Weights from any supported file, in our layout (on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found" if not path.exists() else "not a file", path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path)
    kind = sniff_format(path)
    if kind == "t7":
        return load_t7(path)
    if kind == "unknown":
        raise InputError(
            "not a DeepMask weights file (neither a PyTorch checkpoint nor a Torch7 .t7 file)", path
        )
    payload = read_payload(path, "cpu")
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        from scubasteve.inference.deepmask.checkpoint import load_weights

        return load_weights(path)
    if isinstance(payload, dict) and str(payload.get("format", "")).startswith(FORMAT):
        check_payload(path, payload, str(payload["format"]), FORMAT_VERSION)
        raise InputError(
            "this is a training-state file; use the final .pt of the run (or --resume)", path
        )
    return convert_state_dict(_state_of(payload, path), path)


def _state_of(payload: Any, path: Path) -> dict[str, Any]:
    import torch

    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError("a PyTorch file, but it holds no state dict of weights", path)
    return {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


# --- PyTorch layouts ------------------------------------------------------------------------------

_PORT_RULES = (
    (re.compile(r"^trunk\.0\.0\.1\.(weight|bias)$"), r"trunk.0.\1"),
    (re.compile(r"^trunk\.0\.(\d+)\.(\d+)\.conv2\.1\.(weight|bias)$"), r"trunk.\1.\2.conv2.\3"),
    (re.compile(r"^trunk\.0\.(.+)$"), r"trunk.\1"),
    (re.compile(r"^trunk\.1\.([02])\.(weight|bias)$"), r"neck.\1.\2"),
    (re.compile(r"^maskBranch\.0\.0\.(weight|bias)$"), r"mask_head.\1"),
    (re.compile(r"^scoreBranch\.([14])\.(weight|bias)$"), r"score_head.\1.\2"),
)
_TORCHVISION_STAGES = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6}


def convert_state_dict(state: dict[str, Any], path: Path | None = None) -> LoadedWeights:
    """Our layout from the port's state dict, a torchvision ResNet or our own keys."""
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    if any(k.startswith(("maskBranch.", "scoreBranch.")) for k in state):
        return _from_port(state, path)
    if "conv1.weight" in state and any(k.startswith("layer3.") for k in state):
        trunk = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            if head in _TORCHVISION_STAGES:
                trunk[f"trunk.{_TORCHVISION_STAGES[head]}.{rest}"] = value
        cfg = infer_config(trunk, "zeros", path)
        return LoadedWeights(cfg, trunk, {"trunk_only": True}, "torchvision-resnet")
    if any(k.startswith("trunk.") for k in state) and any(k.startswith("neck.") for k in state):
        return LoadedWeights(infer_config(state, "zeros", path), state, {}, "state-dict")
    raise InputError(
        "a PyTorch checkpoint, but not of DeepMask (no trunk/maskBranch/scoreBranch weights; "
        f"first keys: {', '.join(list(state)[:4])})",
        path,
    )


def _from_port(state: dict[str, Any], path: Path | None) -> LoadedWeights:
    out: dict[str, Any] = {}
    wrapped = False
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for i, (pattern, repl) in enumerate(_PORT_RULES):
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value
                wrapped = wrapped or i < 2  # the first two rules unwrap Sequential(pad, conv)
                break
        else:
            raise InputError(f"unexpected weight {key!r} for a DeepMask .pth.tar", path)
    padding = "reflect" if wrapped else "zeros"
    return LoadedWeights(
        infer_config(out, padding, path), out, {"converted_from": "pth-port"}, "pth-port"
    )


def convert_file(src: str | Path, dst: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Convert any supported weights file into our `.pt` format; returns `dst`."""
    loaded = load_any(src)
    if loaded.meta.get("trunk_only"):
        raise InputError(
            "holds only a ResNet trunk, not a whole DeepMask; use it with `train deepmask --init`",
            src,
        )
    info = {**loaded.meta, "converted_from_file": Path(src).name, "source_format": loaded.source}
    info.update(meta or {})
    return save_weights(Path(dst), loaded.state_dict, loaded.config, info)


def load_t7(path: Path) -> LoadedWeights:
    """Convert a Torch7 DeepMask, SharpMask or ResNet-50 `.t7` (see `t7.py`)."""
    from scubasteve.inference.deepmask.t7 import read_t7_model

    return read_t7_model(path)
