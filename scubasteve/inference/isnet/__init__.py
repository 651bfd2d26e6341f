"""The IS-Net engine (PyTorch): class-agnostic masks from a box crop, with fine outlines.

Importing this package is light (no torch): torch loads when the network is built or weights are
read. `load_proposer(weights, device)` is what the engine registry calls; `weights_problem` says
cheaply why the engine cannot run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scubasteve.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from scubasteve.inference.isnet.proposer import IsnetOptions, IsnetProposer

__all__ = ["load_proposer", "proposer_from_file", "resolve", "weights_problem"]


def resolve(weights: str | Path | None = None) -> Path:
    """The weights file for a name, a path, or None (the default installed IS-Net).

    Raises the weights manager's `WeightsNotInstalled` (saying how to get the model) or InputError.
    """
    from scubasteve.weights import resolve_weights

    return Path(resolve_weights(weights, kind=None if weights is not None else "isnet"))


def weights_problem(weights: str | Path | None = None) -> str:
    """Why the engine cannot run ("" when its weights resolve); cheap: reads no weights."""
    try:
        resolve(weights)
    except InputError as exc:
        return str(exc)
    return ""


def proposer_from_file(
    path: str | Path, device: str = "auto", options: IsnetOptions | None = None
) -> IsnetProposer:
    from scubasteve.inference.device import resolve_device
    from scubasteve.inference.isnet.proposer import IsnetProposer
    from scubasteve.inference.isnet.weights import build_model, load_weights_file

    path = Path(path)
    weights = load_weights_file(path)
    choice = resolve_device(device)
    net = build_model(weights, choice.device)
    meta = {**weights.meta, "file": str(path), "device": choice.describe()}
    return IsnetProposer(net, choice.device, options, meta)


def load_proposer(
    weights: str | Path | None = None,
    device: str = "auto",
    options: IsnetOptions | None = None,
) -> IsnetProposer:
    """A ready `IsnetProposer` for a model name, a file, or None (the default installed IS-Net)."""
    return proposer_from_file(resolve(weights), device, options)
