"""The DeepMask / SharpMask engine (PyTorch).

Importing this package is light (no torch): torch loads when a network is built or weights are read.
`load_proposer(weights, device)` is what the engine registry calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scubasteve.inference.deepmask.config import DeepMaskConfig, tiny_config

if TYPE_CHECKING:  # pragma: no cover
    from scubasteve.inference.deepmask.proposer import DeepMaskOptions, DeepMaskProposer

__all__ = ["DeepMaskConfig", "load_proposer", "proposer_from_file", "tiny_config"]


def load_proposer(
    weights: str | Path | None = None,
    device: str = "auto",
    options: DeepMaskOptions | None = None,
) -> DeepMaskProposer:
    """A ready `DeepMaskProposer`.

    `weights`: a model name known to the weights manager, a file (our `.pt`, the port's `.pth.tar`
    or a Torch7 `.t7`), or None for the default installed DeepMask (a SharpMask when that is the
    only one). Raises the weights manager's `WeightsNotInstalled` when nothing is installed, and
    `InputError` for files that are not DeepMask weights. `device`: auto, cpu, cuda or mps.
    """
    from scubasteve.weights import resolve_weights

    return proposer_from_file(resolve_weights(weights, kind="deepmask"), device, options)


def proposer_from_file(
    path: str | Path, device: str = "auto", options: DeepMaskOptions | None = None
) -> DeepMaskProposer:
    from scubasteve.core.errors import InputError
    from scubasteve.inference.deepmask.checkpoint import build_model
    from scubasteve.inference.deepmask.proposer import DeepMaskProposer
    from scubasteve.inference.deepmask.weights import load_weights_file
    from scubasteve.inference.device import resolve_device

    path = Path(path)
    loaded = load_weights_file(path)
    if loaded.meta.get("trunk_only"):
        raise InputError(
            "holds only a ResNet trunk, not a DeepMask; train one from it with "
            "`scubasteve train deepmask --init FILE`",
            path,
        )
    choice = resolve_device(device)
    net = build_model(loaded, choice.device, path)
    meta: dict[str, Any] = {**loaded.meta, "file": str(path), "device": choice.describe()}
    return DeepMaskProposer(net, loaded.config, choice.device, options, meta)
