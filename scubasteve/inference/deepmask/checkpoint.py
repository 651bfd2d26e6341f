"""Our own DeepMask weights format: a torch `.pt` holding the state dict, the architecture and a checksum.

The container is `scubasteve.weights.checkpoint`'s. File contents::

    format: "scubasteve-deepmask"   format_version: 1
    architecture: "deepmask" | "sharpmask"
    config: DeepMaskConfig.to_dict() (input size 192, window 160, ..., sharpmask flag)
    meta: small JSON-like dict (where it came from, training summary)
    state_dict: {key: tensor}
    sha256: digest of the state dict (names, dtypes, shapes, bytes)

The checksum is the validity marker: a file whose tensors do not match it (a half-written or
damaged file) is refused, so a broken checkpoint is never loaded as valid. Files are written
atomically (temporary file, fsync, rename). Training-state files use the same container with
``format: "scubasteve-deepmask-training"`` and extra entries (optimiser, epoch, random states).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.weights.checkpoint import (
    check_payload,
    cpu_state,
    fit_problems,
    read_payload,
    tree_digest,
    write_payload,
)

FORMAT = "scubasteve-deepmask"
TRAINING_FORMAT = "scubasteve-deepmask-training"
FORMAT_VERSION = 1


@dataclass
class LoadedWeights:
    """Weights read from any supported file, in our layout. `source` names the file's format."""

    config: DeepMaskConfig
    state_dict: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = FORMAT

    @property
    def architecture(self) -> str:
        return "sharpmask" if self.config.sharpmask else "deepmask"


def save_weights(
    path: Path,
    state_dict: dict[str, Any],
    config: DeepMaskConfig,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write weights in our format, atomically; returns `path`."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": "sharpmask" if config.sharpmask else "deepmask",
        "config": config.to_dict(),
        "meta": dict(meta or {}),
        "state_dict": cpu_state(state_dict),
    }
    payload["sha256"] = tree_digest(payload["state_dict"])
    write_payload(Path(path), payload)
    return Path(path)


def load_weights(path: Path, map_location: Any = "cpu") -> LoadedWeights:
    """Weights in our own format (see the module docstring)."""
    path = Path(path)
    payload = check_payload(path, read_payload(path, map_location), FORMAT, FORMAT_VERSION)
    try:
        config = DeepMaskConfig.from_dict(dict(payload["config"]))
    except (InputError, TypeError, KeyError) as exc:
        raise InputError(f"the stored architecture is not understood: {exc}", path) from exc
    return LoadedWeights(config, payload["state_dict"], dict(payload.get("meta") or {}), FORMAT)


def build_model(weights: LoadedWeights, device: str = "cpu", path: Path | None = None) -> Any:
    """The network of `weights`, with its tensors loaded, in eval mode on `device`."""
    from scubasteve.inference.deepmask.network import build_network

    net = build_network(weights.config)
    expected = net.state_dict()
    state = dict(weights.state_dict)
    for key, value in expected.items():
        # Batch-norm counters are bookkeeping; older files do not have them.
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    parts = fit_problems(expected, state)
    if parts:
        raise InputError("the weights do not fit the DeepMask network: " + "; ".join(parts), path)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()
