"""One fine-tuning run of IS-Net: split, measure before, train, measure after, install or not.

The held-out images are measured twice with the engines a user would get: IS-Net alone and the
default engine (IS-Net ranked with the classic engine), each proposing from every object's box
grown 5 %. The fine-tuned model is saved as a new model (the published one is never touched) and
installed only when the default engine's held-out top-1 did not get worse; the report says in plain
words what happened and why, also when there was too little to learn from.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.evaluation.proposal_quality import ProposalQuality, evaluate_boxes
from scubasteve.training.isnet.data import BoxCrops, box_objects
from scubasteve.training.isnet.trainer import IsnetTrainer, IsnetTrainOptions, TrainRecord
from scubasteve.training.progress import ProgressCallback

log = logging.getLogger(__name__)

#: Fewer training objects than this teach the network nothing worth installing.
MIN_TRAIN_OBJECTS = 20
#: Fewer held-out objects than this cannot tell better from worse.
MIN_HELDOUT_OBJECTS = 8


@dataclass
class Split:
    """Document indices used for training and held out for the before/after measurement."""

    train: list[int]
    heldout: list[int]
    how: str


def split_images(
    n_docs: int, holdout: str = "fraction", fraction: float = 0.2, seed: int = 0
) -> Split:
    """`holdout`: "odd" (the images at odd positions, the split the benchmarks report on),
    "even", or "fraction" (a seeded random `fraction` of the images, at least one)."""
    if n_docs < 2:
        raise InputError(f"a held-out split needs at least 2 images, the data has {n_docs}")
    if holdout in ("odd", "even"):
        first = 1 if holdout == "odd" else 0
        held = list(range(first, n_docs, 2))
        train = [i for i in range(n_docs) if i % 2 != first]
        return Split(train, held, f"images at {holdout} positions held out")
    if holdout != "fraction":
        raise InputError(f"unknown hold-out {holdout!r} (odd, even or fraction)")
    if not 0.0 < fraction < 1.0:
        raise InputError(f"the held-out fraction must lie between 0 and 1, got {fraction}")
    order = np.random.default_rng(seed).permutation(n_docs).tolist()
    n_held = min(n_docs - 1, max(1, round(n_docs * fraction)))
    return Split(
        sorted(order[n_held:]), sorted(order[:n_held]), f"{n_held} of {n_docs} images held out"
    )


@dataclass
class Measured:
    """Held-out quality of IS-Net alone and of the default engine with one network."""

    isnet: ProposalQuality
    default: ProposalQuality

    def row(self) -> dict[str, float]:
        return {
            "objects": float(self.default.objects),
            "isnet_top1": _mean(self.isnet.top1),
            "top1": _mean(self.default.top1),
            "best": _mean(self.default.best),
        }


@dataclass
class RunReport:
    """What a fine-tuning run did, for the command line, the window and the model's sidecar."""

    split: Split
    train_objects: int
    heldout_objects: int
    record: TrainRecord | None = None
    before: Measured | None = None
    after: Measured | None = None
    installed: str = ""
    weights: Path | None = None
    verdict: str = ""
    notes: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """The model's sidecar record: what it was trained on and how it measured."""
        out: dict[str, Any] = {
            "split": self.split.how,
            "train_objects": self.train_objects,
            "heldout_objects": self.heldout_objects,
        }
        if self.record is not None:
            out["epochs"] = self.record.epochs_done
            out["samples_per_second"] = round(self.record.samples_per_second, 2)
        if self.before is not None and self.after is not None:
            out["heldout"] = {"before": self.before.row(), "after": self.after.row()}
        return out


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def measure(
    network: Any, docs: Sequence[ImageDoc], *, cancel: CancelToken | None = None
) -> Measured:
    """IS-Net alone and the default engine on every object of `docs` (box grown 5 %)."""
    from scubasteve.inference.classic import ClassicProposer
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic

    alone = evaluate_boxes(network, docs, cancel=cancel)
    both = IsnetWithClassic(network, ClassicProposer(), concurrent=False)
    default = evaluate_boxes(both, docs, cancel=cancel)
    return Measured(alone, default)


def fine_tune(
    train_docs: Sequence[ImageDoc],
    heldout_docs: Sequence[ImageDoc],
    *,
    base: str | Path | None,
    run_dir: Path,
    name: str | None = None,
    options: IsnetTrainOptions | None = None,
    split_how: str = "",
    device: str = "auto",
    resume: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    meta: dict[str, Any] | None = None,
    before: Measured | None = None,
) -> RunReport:
    """Fine-tune the IS-Net `base` (a model name, a file, or None: the installed default) on
    `train_docs`; measure before and after on `heldout_docs`; install as `name` if it helps.

    `before`: the base model's held-out measurement when the caller already has it."""
    from scubasteve.inference.device import resolve_device
    from scubasteve.inference.isnet import load_proposer
    from scubasteve.weights import register_trained
    from scubasteve.weights.isnet_file import save_weights

    options = options or IsnetTrainOptions()
    train_objects = box_objects(train_docs)
    held_objects = box_objects(heldout_docs)
    split = Split([], [], split_how or f"{len(heldout_docs)} images held out")
    report = RunReport(split, len(train_objects), len(held_objects))
    if len(train_objects) < MIN_TRAIN_OBJECTS:
        report.verdict = (
            f"too little to learn from: {len(train_objects)} objects in the training images "
            f"(at least {MIN_TRAIN_OBJECTS} are needed); nothing was trained or installed"
        )
        return report
    choice = resolve_device(device)
    network = load_proposer(base, choice.device)
    if before is not None:
        report.before = before
    elif len(held_objects) >= MIN_HELDOUT_OBJECTS:
        report.before = measure(network, heldout_docs, cancel=cancel)
    else:
        report.notes.append(
            f"only {len(held_objects)} held-out objects: too few to measure, so the result is "
            "not installed"
        )
    start = {k: v.detach().clone() for k, v in network.net.state_dict().items()}
    trainer = IsnetTrainer(
        network.net,
        BoxCrops(train_docs, options.input_size, options.context, options.grow),
        train_objects,
        options,
        run_dir,
        choice.device,
    )
    report.record = trainer.train(progress=progress, cancel=cancel, resume=resume)
    if report.record.cancelled:
        report.verdict = (
            f"stopped after {report.record.epochs_done} of {options.epochs} epochs; resume the "
            "run to finish it; nothing was installed"
        )
        return report
    network.net.load_state_dict(blended(start, network.net.state_dict(), options.blend))
    network.net.eval()
    if report.before is not None:
        report.after = measure(network, heldout_docs, cancel=cancel)
    run_meta = {**(meta or {}), "base": str(base or "installed default"), **report.meta()}
    report.weights = save_weights(run_dir / "isnet.pt", network.net.state_dict(), run_meta)
    report.verdict = _verdict(report)
    if name and report.before is not None and report.after is not None and _helped(report):
        register_trained(name, "isnet", report.weights, run_meta)
        report.installed = name
    return report


def blended(start: dict[str, Any], tuned: dict[str, Any], share: float) -> dict[str, Any]:
    """`share` x `tuned` + (1 - `share`) x `start`, tensor by tensor (non-float tensors: tuned's)."""
    if not 0.0 <= share <= 1.0:
        raise InputError(f"the blend must lie between 0 and 1, got {share}")
    out = {}
    for key, value in tuned.items():
        if value.is_floating_point() and share < 1.0:
            mixed = share * value.float() + (1.0 - share) * start[key].to(value.device).float()
            out[key] = mixed.to(value.dtype)
        else:
            out[key] = value
    return out


def split_and_fine_tune(
    docs: Sequence[ImageDoc], holdout: str = "fraction", fraction: float = 0.2, **kwargs: Any
) -> RunReport:
    """`fine_tune` on one data set split by image (`split_images`)."""
    seed = kwargs["options"].seed if kwargs.get("options") is not None else 0
    split = split_images(len(docs), holdout, fraction, seed)
    report = fine_tune(
        [docs[i] for i in split.train],
        [docs[i] for i in split.heldout],
        split_how=split.how,
        **kwargs,
    )
    report.split = split
    return report


def _helped(report: RunReport) -> bool:
    assert report.before is not None and report.after is not None
    return _mean(report.after.default.top1) >= _mean(report.before.default.top1)


def _verdict(report: RunReport) -> str:
    if report.before is None or report.after is None:
        return "trained, but with too few held-out objects to tell whether it helps: not installed"
    b, a = report.before.row(), report.after.row()
    change = (
        f"default engine top-1 {b['top1']:.3f} -> {a['top1']:.3f}, best of ten {b['best']:.3f} -> "
        f"{a['best']:.3f}; IS-Net alone top-1 {b['isnet_top1']:.3f} -> {a['isnet_top1']:.3f} "
        f"on {int(a['objects'])} held-out objects"
    )
    if _helped(report):
        return f"fine-tuning helped: {change}"
    return (
        f"fine-tuning did not help ({change}): the model is kept in the run folder, not installed"
    )


def with_options(options: IsnetTrainOptions, **changes: Any) -> IsnetTrainOptions:
    """A copy of `options` with `changes` (None values ignored)."""
    return dataclasses.replace(options, **{k: v for k, v in changes.items() if v is not None})
