"""The engine registry: every engine described once, built by name, and its status on this machine.

`ENGINES` maps each name to an `EngineSpec`: what the engine is, how to build it, and a cheap check
of what it needs (libraries, weights) that loads no model. The names:

- ``ensemble`` (the app's default) picks the best combination installed: SAM 2 with the classic
  engine as second opinion (the `sam` extra and SAM 2 weights); else IS-Net and the classic engine
  ranked together (IS-Net weights); else the classic engine with DeepMask (DeepMask weights, unless
  a DeepMask trained here measured clearly worse than the classic engine); else the classic engine
  alone. `ensemble_plan` is that choice, made once for both building and status.
- ``classic`` (no weights), ``isnet``, ``deepmask`` and ``sam2`` (each alone), and the benchmark
  baselines ``box`` and ``grabcut``.

Every engine with a learned model is wrapped in `ClassicFallback`, the one place where a failing
engine hands over to the classic engine. Engines' libraries (torch, `sam2`) load only when an
engine that needs them is built.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.inference.base import MaskProposer

log = logging.getLogger(__name__)

Weights = str | Path | None


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run on this installation, and if not (or if reduced) why."""

    name: str
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class EngineOptions:
    """How to build an engine: `device` (auto, cpu, cuda, mps) and `weights` (a model name or
    file) concern the learned engines; `input_size` is IS-Net's network input side in pixels
    (None: its default)."""

    device: str = "auto"
    weights: Weights = None
    input_size: int | None = None


@dataclass(frozen=True)
class EngineSpec:
    """One engine: `build(options)` makes it; `problem(weights)` says cheaply why it cannot run
    ("" when it can); `summary` says what it is, for lists and help texts."""

    name: str
    summary: str
    build: Callable[[EngineOptions], MaskProposer]
    problem: Callable[[Weights], str]


# -- what each engine needs (cheap: no model is loaded) ----------------------------------------


def classic_problem(weights: Weights = None) -> str:
    """Why the classic engine cannot run ("" when its libraries are installed)."""
    needed = (("maxflow", "PyMaxflow"), ("skimage", "scikit-image"))
    missing = [pip for module, pip in needed if importlib.util.find_spec(module) is None]
    if missing:
        return f"the classic engine needs {' and '.join(missing)} (pip install {' '.join(missing)})"
    return ""


def isnet_problem(weights: Weights = None) -> str:
    """Why IS-Net cannot run ("" when its weights resolve)."""
    from scubasteve.inference.isnet import weights_problem

    return weights_problem(weights)


def deepmask_problem(weights: Weights = None) -> str:
    """Why DeepMask cannot run ("" when its package is there and its weights resolve)."""
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


def sam2_problem(weights: Weights = None) -> str:
    """Why SAM 2 cannot run ("" when its package is installed and its weights resolve)."""
    try:
        from scubasteve.inference.sam2 import resolve
        from scubasteve.inference.sam2 import sam2_problem as package_problem
    except ImportError as exc:
        return f"the SAM 2 engine is not available in this installation ({exc})"
    problem = package_problem()
    if problem:
        return problem
    try:
        resolve(weights)
    except InputError as exc:
        return str(exc)
    return ""


# -- DeepMask's measured trust (models trained here carry a held-out record) --------------------

# A trained DeepMask is measured with the classic engine on the same held-out objects when it is
# installed (`meta.heldout` in its sidecar).
# Left out of the ensemble when its best of ten is this much below the classic engine's: on coco128
# a DeepMask at 0.51 against classic 0.71 pulled the ensemble's top-1 from 0.64 to 0.52.
LEAVE_OUT_MARGIN = 0.02


def deepmask_trust(record: dict[str, float] | None, label: str) -> tuple[float, str]:
    """The ensemble's trust weight for a DeepMask model from its held-out record, and why.

    0.0 means leave it out (the reason says so). A model measured below the classic engine is left
    out however few objects it was measured on: fewer objects make the comparison noisier, not the
    model better. Otherwise a weight in [0.25, 1]: the ratio of its held-out top-1 mean IoU to the
    classic engine's, capped at 1, so that a model whose first proposal is less reliable does not
    push the classic engine's best down the list.
    """
    if not record or "classic_best" not in record:
        return 1.0, ""
    objects = int(record.get("objects", 0))
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


def _deepmask_record(weights: Weights) -> tuple[dict[str, float] | None, str]:
    """The held-out record of the DeepMask model `weights` resolves to, and its file name."""
    try:
        from scubasteve.inference.deepmask.weights import heldout_quality, resolve

        path = resolve(weights)
    except (ImportError, InputError, OSError):
        return None, ""  # loading reports the problem
    return heldout_quality(path), repr(Path(path).name)


# -- builders ---------------------------------------------------------------------------------


def _classic(options: EngineOptions) -> MaskProposer:
    from scubasteve.inference.classic import ClassicProposer

    return ClassicProposer()


def _with_fallback(engine: MaskProposer) -> MaskProposer:
    from scubasteve.inference.fallback import ClassicFallback

    return ClassicFallback(engine, _classic(EngineOptions()))


def _isnet_options(options: EngineOptions) -> Any:
    from scubasteve.inference.isnet.proposer import IsnetOptions

    if options.input_size is None:
        return IsnetOptions()
    return IsnetOptions(input_size=options.input_size)


def _isnet(options: EngineOptions) -> MaskProposer:
    from scubasteve.inference.isnet import load_proposer

    return _with_fallback(load_proposer(options.weights, options.device, _isnet_options(options)))


def _deepmask(options: EngineOptions) -> MaskProposer:
    try:
        from scubasteve.inference.deepmask import load_proposer
    except ImportError as exc:
        raise InputError(
            f"the DeepMask engine is not available in this installation ({exc})"
        ) from exc
    return _with_fallback(load_proposer(options.weights, options.device))


def _sam2(options: EngineOptions) -> MaskProposer:
    from scubasteve.inference.sam2 import load_proposer

    return _with_fallback(load_proposer(options.weights, options.device))


def _box(options: EngineOptions) -> MaskProposer:
    from scubasteve.inference.baselines import BoxProposer

    return BoxProposer()


def _grabcut(options: EngineOptions) -> MaskProposer:
    from scubasteve.inference.baselines import GrabCutProposer

    return GrabCutProposer()


@dataclass(frozen=True)
class EnsemblePlan:
    """What the default engine will be made of: `learned` is "sam2", "isnet", "deepmask" or ""
    (the classic engine alone); `reason` is the status line; `trust` DeepMask's weight."""

    learned: str
    reason: str
    trust: float = 1.0


def learned_kind(weights: Weights) -> str:
    """Which learned engine a `weights` argument of the ensemble is for ("isnet", "deepmask",
    "sam2"), from the model's registry kind or, for a file, its content; "" for None."""
    if weights is None:
        return ""
    from scubasteve.weights.store import lookup

    found = lookup(str(weights)) if not isinstance(weights, Path) else None
    if found is not None:
        kind = found[0].kind
        return "deepmask" if kind == "sharpmask" else kind
    path = Path(weights).expanduser()
    if path.suffix.lower() == ".onnx":
        return "isnet"
    if path.is_file():
        from scubasteve.weights.isnet_file import is_isnet_checkpoint

        if is_isnet_checkpoint(path):
            return "isnet"
    return "deepmask"


def ensemble_plan(weights: Weights = None) -> EnsemblePlan:
    """The default engine's make-up on this installation, and why (see the module docstring).

    `weights` names the learned model to use (its kind decides which engine); None: the defaults
    installed.
    """
    problem = classic_problem()
    if problem:
        return EnsemblePlan("", problem)
    kind = learned_kind(weights)
    missing: list[str] = []
    if kind in ("", "sam2"):
        problem = sam2_problem(weights if kind else None)
        if not problem:
            return EnsemblePlan("sam2", "SAM 2 first, the classic engine as second opinion")
        if kind:
            return EnsemblePlan("", f"the classic engine serves alone (SAM 2: {problem})")
    if kind in ("", "isnet"):
        problem = isnet_problem(weights if kind else None)
        if not problem:
            return EnsemblePlan("isnet", "IS-Net and the classic engine, ranked together")
        if kind:
            return EnsemblePlan("", f"the classic engine serves alone (IS-Net: {problem})")
        missing.append(f"IS-Net: {problem}")
    problem = deepmask_problem(weights)
    if not problem:
        trust, left_out = deepmask_trust(*_deepmask_record(weights))
        if left_out:
            return EnsemblePlan("", left_out)
        note = "classic + DeepMask" + (f" (DeepMask trusted {trust:.2f})" if trust < 1 else "")
        return EnsemblePlan("deepmask", note, trust)
    if kind == "deepmask" or not missing:
        return EnsemblePlan("", f"the classic engine serves alone (DeepMask: {problem})")
    return EnsemblePlan("", "the classic engine serves alone (" + missing[0] + ")")


def _ensemble(options: EngineOptions) -> MaskProposer:
    from scubasteve.inference.classic import ClassicProposer
    from scubasteve.inference.fallback import ClassicFallback
    from scubasteve.inference.fusion import RankFusion

    weights, device = options.weights, options.device
    plan = ensemble_plan(weights)
    classic = ClassicProposer()
    try:
        if plan.learned == "sam2":
            from scubasteve.inference.sam2 import load_proposer as load_sam2
            from scubasteve.inference.sam2.with_classic import Sam2WithClassic

            engine: MaskProposer = Sam2WithClassic(
                load_sam2(weights, device), classic, note=plan.reason
            )
        elif plan.learned == "isnet":
            from scubasteve.inference.isnet import load_proposer as load_isnet
            from scubasteve.inference.isnet.with_classic import IsnetWithClassic

            network = load_isnet(weights, device, _isnet_options(options))
            engine = IsnetWithClassic(network, classic, note=plan.reason)
        elif plan.learned == "deepmask":
            from scubasteve.inference.deepmask import load_proposer as load_deepmask

            engine = RankFusion(
                [classic, load_deepmask(weights, device)],
                weights=[1.0, plan.trust],
                note=plan.reason,
            )
        else:
            return RankFusion([classic], note=plan.reason)
    except (InputError, ImportError, OSError, RuntimeError) as exc:
        note = f"the classic engine serves alone: {plan.learned} could not start ({exc})"
        log.warning("ensemble: %s", note)
        return RankFusion([classic], note=note)
    return ClassicFallback(engine, classic)


#: Every engine, by name, in the order lists show them.
ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            "ensemble",
            "the default: the best combination installed (SAM 2, else IS-Net, else DeepMask, "
            "each with the classic engine; else the classic engine alone)",
            _ensemble,
            lambda weights: classic_problem(),
        ),
        EngineSpec("classic", "graph cuts and image cues, no weights", _classic, classic_problem),
        EngineSpec(
            "isnet", "IS-Net (DIS general use) alone: needs its weights", _isnet, isnet_problem
        ),
        EngineSpec(
            "deepmask", "DeepMask / SharpMask alone: needs weights", _deepmask, deepmask_problem
        ),
        EngineSpec(
            "sam2", "SAM 2 alone: needs the `sam` extra and a SAM 2 checkpoint", _sam2, sam2_problem
        ),
        EngineSpec("box", "baseline: the box itself", _box, lambda weights: ""),
        EngineSpec("grabcut", "baseline: one plain OpenCV GrabCut", _grabcut, lambda weights: ""),
    )
}
ENGINE_NAMES = tuple(ENGINES)


def create_proposer(
    name: str,
    *,
    device: str = "auto",
    weights: Weights = None,
    input_size: int | None = None,
) -> MaskProposer:
    """A ready engine. `weights` (a model name or a file) names the model of a learned engine; for
    ``ensemble`` it chooses the learned engine by its kind. `device` concerns the learned engines,
    `input_size` IS-Net's network input (see `EngineOptions`).

    Raises InputError for an unknown name, and for a learned engine alone when its weights are
    missing (the message says how to get them). ``ensemble`` never fails for want of weights: it
    serves the classic engine alone and says why in its `note`.
    """
    spec = ENGINES.get((name or "").strip().lower())
    if spec is None:
        raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
    return spec.build(EngineOptions(device, weights, input_size))


def engine_status(weights: Weights = None) -> list[EngineStatus]:
    """The status of every engine, in `ENGINES` order; cheap (loads no model).

    For ``ensemble`` the reason says what it is made of here, or why it is reduced.
    """
    out = []
    for spec in ENGINES.values():
        if spec.name == "ensemble":
            plan = ensemble_plan(weights if learned_kind(weights) else None)
            available = not classic_problem()
            out.append(EngineStatus(spec.name, available, plan.reason))
            continue
        own = (
            weights
            if spec.name in ("deepmask", "isnet", "sam2") and learned_kind(weights) == spec.name
            else None
        )
        problem = spec.problem(own)
        reason = problem or (spec.summary if spec.name in ("box", "grabcut") else "")
        out.append(EngineStatus(spec.name, not problem, reason))
    return out
