"""The engine registry: build a `MaskProposer` by name and say which engines can run here.

Names: ``ensemble`` (the app's default: SAM 2 first with the classic engine as fallback when the
`sam` extra and SAM 2 weights are installed; else classic + DeepMask when DeepMask weights are
installed, else the classic engine alone; a DeepMask trained here that measured clearly below the classic engine
on held-out objects is left out, one slightly weaker is trusted less), ``classic`` (no weights), ``deepmask`` (needs weights),
``sam2`` (needs the `sam` extra and SAM 2 weights), and the
benchmark baselines ``box`` and ``grabcut``. DeepMask and SAM 2, and with them PyTorch, are
imported only when asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scubasteve.core.errors import InputError
from scubasteve.inference.base import MaskProposer

log = logging.getLogger(__name__)

ENGINE_NAMES = ("ensemble", "classic", "deepmask", "sam2", "box", "grabcut")


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run on this installation, and if not (or if reduced) why."""

    name: str
    available: bool
    reason: str = ""


def _load_deepmask(weights: str | Path | None, device: str) -> MaskProposer:
    """DeepMask through its package's `load_proposer`; InputError when it cannot be had."""
    try:
        from scubasteve.inference.deepmask import load_proposer
    except ImportError as exc:
        raise InputError(
            f"the DeepMask engine is not available in this installation ({exc})"
        ) from exc
    return load_proposer(weights, device)


def _deepmask_weights_problem(weights: str | Path | None) -> str:
    """Why DeepMask cannot run ("" when its package is there and its weights resolve).

    Cheap: it looks for the weights file but loads neither the model nor PyTorch.
    """
    try:
        import scubasteve.inference.deepmask  # noqa: F401  (is the engine part of this install?)
    except ImportError as exc:
        return f"the DeepMask engine is not available in this installation ({exc})"
    from scubasteve.inference.deepmask.weights import resolve

    try:
        resolve(weights)
    except InputError as exc:
        return str(exc)
    return ""


def _sam2_problem(weights: str | Path | None = None) -> str:
    """Why SAM 2 cannot run ("" when its package is installed and its weights resolve); cheap."""
    try:
        from scubasteve.inference.sam2 import resolve, sam2_problem
    except ImportError as exc:
        return f"the SAM 2 engine is not available in this installation ({exc})"
    problem = sam2_problem()
    if problem:
        return problem
    try:
        resolve(weights)
    except InputError as exc:
        return str(exc)
    return ""


def _load_sam2(weights: str | Path | None, device: str) -> MaskProposer:
    from scubasteve.inference.sam2 import load_proposer

    return load_proposer(weights, device)


# A trained DeepMask is measured with the classic engine on the same held-out objects when it is
# installed (`meta.heldout` in its sidecar). Fewer objects than this say too little to act on.
MIN_HELDOUT_OBJECTS = 20
# Left out of the ensemble when its best of ten is this much below the classic engine's: on coco128
# a DeepMask at 0.51 against classic 0.71 pulled the ensemble's top-1 from 0.64 to 0.52.
LEAVE_OUT_MARGIN = 0.02


def deepmask_trust(record: dict[str, float] | None, label: str) -> tuple[float, str]:
    """The ensemble's trust weight for a DeepMask model from its held-out record, and why.

    0.0 means leave it out (the reason says so). Otherwise a weight in [0.25, 1]: the ratio of its
    held-out top-1 mean IoU to the classic engine's, capped at 1, so that a model whose first
    proposal is less reliable does not push the classic engine's best down the list.
    """
    if not record or "classic_best" not in record:
        return 1.0, ""
    objects = int(record.get("objects", 0))
    if objects < MIN_HELDOUT_OBJECTS:
        return 1.0, ""
    best, classic_best = float(record["best"]), float(record["classic_best"])
    if best < classic_best - LEAVE_OUT_MARGIN:
        return 0.0, (
            f"DeepMask model {label} measured below the classic engine on {objects} held-out "
            f"objects (best of ten {best:.3f} against {classic_best:.3f}), so the classic engine "
            "serves alone; choose the deepmask engine to use that model anyway"
        )
    top1, classic_top1 = float(record["top1"]), float(record.get("classic_top1", 0.0))
    weight = 1.0 if classic_top1 <= 0 else min(1.0, max(0.25, top1 / classic_top1))
    return weight, ""


def _deepmask_record(weights: str | Path | None) -> tuple[dict[str, float] | None, str]:
    """The held-out record of the DeepMask model `weights` resolves to, and its file name."""
    try:
        from scubasteve.inference.deepmask.weights import heldout_quality, resolve

        path = resolve(weights)
    except (ImportError, InputError, OSError):
        return None, ""  # loading reports the problem
    return heldout_quality(path), repr(Path(path).name)


def _classic_problem() -> str:
    """Why the classic engine cannot run ("" when its libraries are installed), without importing."""
    import importlib.util

    needed = (("maxflow", "PyMaxflow"), ("skimage", "scikit-image"))
    missing = [pip for module, pip in needed if importlib.util.find_spec(module) is None]
    if missing:
        return f"the classic engine needs {' and '.join(missing)} (pip install {' '.join(missing)})"
    return ""


def _classic(weights: str | Path | None, device: str) -> MaskProposer:
    from scubasteve.inference.classic import ClassicProposer

    return ClassicProposer()


def _box(weights: str | Path | None, device: str) -> MaskProposer:
    from scubasteve.inference.baselines import BoxProposer

    return BoxProposer()


def _grabcut(weights: str | Path | None, device: str) -> MaskProposer:
    from scubasteve.inference.baselines import GrabCutProposer

    return GrabCutProposer()


def _ensemble(weights: str | Path | None, device: str) -> MaskProposer:
    from scubasteve.inference.classic import ClassicProposer
    from scubasteve.inference.ensemble import EnsembleProposer

    classic = ClassicProposer()
    if not _sam2_problem():
        try:
            from scubasteve.inference.sam2.ensemble import Sam2Ensemble

            return Sam2Ensemble(_load_sam2(None, device), classic)
        except (InputError, ImportError, OSError, RuntimeError) as exc:
            log.warning("ensemble: SAM 2 could not start, trying DeepMask: %s", exc)
    weight, left_out = deepmask_trust(*_deepmask_record(weights))
    if left_out:
        log.info("ensemble: %s", left_out)
        return EnsembleProposer([classic], note=left_out)
    try:
        deepmask = _load_deepmask(weights, device)
    except (InputError, ImportError, OSError, RuntimeError) as exc:
        note = f"the classic engine serves alone: {exc}"
        log.info("ensemble: %s", note)
        return EnsembleProposer([classic], note=note)
    note = "classic + DeepMask" + (f" (DeepMask trusted {weight:.2f})" if weight < 1 else "")
    return EnsembleProposer([classic, deepmask], note=note, weights=[1.0, weight])


#: engine name -> builder(weights, device). Builders import their engine's modules themselves, so
#: an engine's libraries load only when it is asked for. Add an engine here and to ENGINE_NAMES.
BUILDERS: dict[str, Callable[[str | Path | None, str], MaskProposer]] = {
    "ensemble": _ensemble,
    "classic": _classic,
    "deepmask": _load_deepmask,
    "sam2": _load_sam2,
    "box": _box,
    "grabcut": _grabcut,
}


def create_proposer(
    name: str, *, device: str = "auto", weights: str | Path | None = None
) -> MaskProposer:
    """A ready engine. `weights` (a model name or a file) names the DeepMask model, or for
    ``sam2`` the SAM 2 model; `device` concerns DeepMask and SAM 2.

    Raises InputError for an unknown name, and for ``deepmask`` when its weights are missing
    (the message says how to get them). ``ensemble`` never fails for want of DeepMask: it falls
    back to the classic engine alone and says why in its `note`.
    """
    builder = BUILDERS.get((name or "").strip().lower())
    if builder is None:
        raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
    return builder(weights, device)


def engine_status(weights: str | Path | None = None) -> list[EngineStatus]:
    """The status of every engine, in `ENGINE_NAMES` order; cheap (loads no model)."""
    problem = _deepmask_weights_problem(weights)
    if problem:
        deepmask = EngineStatus("deepmask", False, problem)
        ensemble = EngineStatus(
            "ensemble", True, f"the classic engine serves alone (DeepMask: {problem})"
        )
    else:
        deepmask = EngineStatus("deepmask", True, "")
        _, left_out = deepmask_trust(*_deepmask_record(weights))
        ensemble = EngineStatus("ensemble", True, left_out or "classic + DeepMask")
    sam2_problem = _sam2_problem()
    sam2 = EngineStatus("sam2", not sam2_problem, sam2_problem)
    if not sam2_problem:
        ensemble = EngineStatus("ensemble", True, "SAM 2 first, the classic engine as fallback")
    classic_problem = _classic_problem()
    if classic_problem:
        ensemble = EngineStatus("ensemble", False, classic_problem)
    return [
        ensemble,
        EngineStatus("classic", not classic_problem, classic_problem),
        deepmask,
        sam2,
        EngineStatus("box", True, "baseline: the box itself"),
        EngineStatus("grabcut", True, "baseline: one plain OpenCV GrabCut"),
    ]
