"""Our torch checkpoint container, shared by the engines' weights formats.

A checkpoint is a dict saved with `torch.save` and read with ``weights_only=True``: ``format`` (which
engine's file it is), ``format_version``, engine-specific entries, ``state_dict`` and ``sha256``, the
digest of the state dict (names, dtypes, shapes, bytes). The checksum is the validity marker: a
file whose tensors do not match it (a half-written or damaged file) is refused. Files are written
atomically. torch is imported inside the functions only.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from scubasteve.core.atomic import atomic_write_bytes
from scubasteve.core.errors import InputError


def tree_digest(tree: Any) -> str:
    """SHA-256 of a nested structure of dicts, lists, numbers, strings and tensors."""
    h = hashlib.sha256()
    _feed(h, tree)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            h.update(repr(k).encode())
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def cpu_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().to("cpu").clone() for k, v in state_dict.items()}


def write_payload(path: Path, payload: dict[str, Any]) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(payload, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def read_payload(path: Path, map_location: Any = "cpu") -> Any:
    """`torch.load` with `weights_only=True`; damage and foreign content become `InputError`s."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found" if not path.exists() else "not a file", path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty (an interrupted write?)", path)
    try:
        with torch.serialization.safe_globals(_numpy_data_types()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"cannot read it as a PyTorch checkpoint: it is truncated or damaged ({_short(exc)})",
            path,
        ) from exc
    except pickle.UnpicklingError as exc:
        raise InputError(
            "it is not a plain-weights PyTorch file (it holds code or objects that are not loaded "
            f"for safety): {_short(exc)}",
            path,
        ) from exc


def _numpy_data_types() -> list[Any]:
    """Numpy scalar and array reconstructors: plain data that training scripts often saved (for
    example a best accuracy as a numpy float), allowed alongside tensors by the safe loader."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    kinds = (
        np.float16,
        np.float32,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.bool_,
    )
    return [scalar, _reconstruct, np.ndarray, np.dtype, *{type(np.dtype(k)) for k in kinds}]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def check_payload(
    path: Path, payload: Any, expected_format: str, format_version: int = 1
) -> dict[str, Any]:
    """The payload if it is a complete file of `expected_format`; else a clear `InputError`."""
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise InputError(f"not a {expected_format} file", path)
    version = payload.get("format_version")
    if not isinstance(version, int) or version > format_version:
        raise InputError(
            f"written by a newer program (format version {version}); update scubasteve", path
        )
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise InputError("the file holds no weights", path)
    if payload.get("sha256") != tree_digest(state):
        raise InputError(
            "the weights do not match their checksum: the file is damaged or was not written "
            "completely; it is not used",
            path,
        )
    return payload


def fit_problems(expected: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """What keeps `state` from loading into a network whose state dict is `expected` (tensors or
    shapes; empty list: it fits)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))

    def shape(value: Any) -> tuple[int, ...]:
        return tuple(getattr(value, "shape", value))

    wrong = [k for k in expected if k in state and shape(state[k]) != shape(expected[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} of the wrong shape (e.g. {k}: {shape(state[k])} instead of "
            f"{shape(expected[k])})"
        )
    return parts
