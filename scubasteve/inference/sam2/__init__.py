"""The SAM 2 engine: Meta's Segment Anything 2 (the optional `sam` extra, package `sam2`).

Importing this package is light (neither torch nor `sam2`): they load when a model is built.
`load_proposer(weights, device)` is what the engine registry calls; `sam2_problem()` says, without
importing anything heavy, why the engine cannot run here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scubasteve.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from scubasteve.inference.sam2.proposer import Sam2Options, Sam2Proposer

__all__ = ["INSTALL_HINT", "build_model", "load_proposer", "proposer_from_file", "sam2_problem"]

INSTALL_HINT = 'pip install "scubasteve[sam]" (from a checkout: SAM2_BUILD_CUDA=0 pip install sam2)'


def sam2_problem() -> str:
    """Why SAM 2 cannot run in this installation ("" when its package is installed)."""
    missing = [m for m in ("sam2", "hydra") if importlib.util.find_spec(m) is None]
    if missing:
        return f"the SAM 2 package is not installed ({', '.join(missing)} missing): {INSTALL_HINT}"
    return ""


def resolve(weights: str | Path | None) -> Path:
    """`resolve_weights(weights, kind="sam2")`, under the name `inference/engines.py` still
    imports (to go when it calls the weights manager directly)."""
    from scubasteve.weights import resolve_weights

    return resolve_weights(weights, kind="sam2")


def build_model(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """(the SAM 2 model with the checkpoint's weights, its `Sam2Variant`).

    The config is chosen from the checkpoint's own architecture, so it always matches the file.
    Raises `InputError` for files that are not SAM 2 checkpoints or do not fit the config.
    """
    from scubasteve.weights.sam2_checkpoint import identify, read_checkpoint

    path = Path(path)
    problem = sam2_problem()
    if problem:
        raise InputError(problem)
    sd = read_checkpoint(path)
    variant = identify(sd, path)
    from sam2.build_sam import build_sam2

    model = build_sam2(variant.config, None, device="cpu", mode="eval")
    expected = model.state_dict()
    wrong = [k for k, v in sd.items() if k in expected and v.shape != expected[k].shape]
    if wrong:  # checked here: load_state_dict would say it only in its message text
        key = wrong[0]
        raise InputError(
            f"does not fit the {variant.label} config ({variant.config}): size mismatch for "
            f"{key}: {tuple(sd[key].shape)} in the file, {tuple(expected[key].shape)} in the "
            f"config" + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""),
            path,
        )
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        detail = f"{len(missing)} missing weights (e.g. {missing[:2]})" if missing else ""
        if unexpected:
            detail += (
                f"{'; ' if detail else ''}{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
            )
        raise InputError(
            f"does not fit the {variant.label} config ({variant.config}): {detail}", path
        )
    return model.to(device).eval(), variant


def load_proposer(
    weights: str | Path | None = None, device: str = "auto", options: Sam2Options | None = None
) -> Sam2Proposer:
    """A ready `Sam2Proposer`. `weights`: a model name (`scubasteve models list`), a checkpoint
    file, or None for the default installed SAM 2 model. Raises `WeightsNotInstalled` when none is
    installed and `InputError` when the package is missing or the file is not SAM 2."""
    problem = sam2_problem()
    if problem:
        raise InputError(problem)
    return proposer_from_file(resolve(weights), device, options)


def proposer_from_file(
    path: str | Path, device: str = "auto", options: Sam2Options | None = None
) -> Sam2Proposer:
    from scubasteve.inference.device import resolve_device
    from scubasteve.inference.sam2.proposer import Sam2Proposer

    choice = resolve_device(device)
    model, variant = build_model(path, choice.device)
    meta = {"file": str(path), "variant": variant.label, "device": choice.describe()}
    return Sam2Proposer(model, choice.device, options, meta)
