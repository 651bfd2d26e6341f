"""Learning from the user: fine-tune DeepMask on a project's accepted annotations and say if it helped.

The project's LabelMe files are split by image into a training part and a held-out part. Proposal
quality (mean IoU of the top-ranked and of the best of ten proposals for each held-out object's box)
is measured with the starting model, the model is fine-tuned on the training part only, and measured
again. The held-out part is never used for training or model selection, so "after" is honest.
The classic engine is measured on the same objects: the installed model's sidecar records both,
and the ensemble leaves a model out that is clearly below the classic engine.
The new model is installed under `name` only when it is not worse than what the user has: its
top-1 and best of ten no lower than the start's, and its top-1 no lower than the classic engine's
(which is what the default engine falls back to without a DeepMask model), whatever the number of
objects. With fewer than `MIN_TRAIN_OBJECTS` objects to learn from nothing is trained.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.evaluation.proposal_quality import (
    ProposalQuality,
    classic_quality,
    evaluate_boxes,
    format_quality,
    heldout_record,
)
from scubasteve.training.deepmask.run import (
    default_run_dir,
    load_dataset,
    split_dataset,
    starting_network,
    train,
)
from scubasteve.training.deepmask.trainer import TrainOptions
from scubasteve.training.progress import ProgressCallback

#: Fewer training objects than this teach DeepMask nothing worth installing.
MIN_TRAIN_OBJECTS = 20


@dataclass
class LearnReport:
    start: str
    before: ProposalQuality
    after: ProposalQuality
    train_images: int
    holdout_images: int
    run_dir: Path
    installed: Path | None
    name: str
    classic: ProposalQuality | None = None

    def table(self) -> str:
        return (
            f"held-out: {self.holdout_images} images, {self.after.objects} objects "
            f"(trained on {self.train_images} images)\n"
            + format_quality(
                [(f"before ({self.start})", self.before), (f"after ({self.name})", self.after)]
                + ([("classic engine", self.classic)] if self.classic is not None else []),
                timings=False,
            )
        )

    def gain(self) -> tuple[float, float]:
        b, a = self.before.summary(), self.after.summary()
        return a["top1_mean_iou"] - b["top1_mean_iou"], a["best_mean_iou"] - b["best_mean_iou"]

    def verdict(self) -> str:
        top1, best = self.gain()
        change = (
            f"top-1 {top1:+.3f}, best of ten {best:+.3f} mean IoU on {self.after.objects} objects"
        )
        if self.installed is not None:
            how = "fine-tuning helped" if best >= 0.01 else "no clear change from fine-tuning"
            text = f"{how} ({change}); installed as {self.name!r} ({self.installed})"
            return text + self._against_classic()
        worse_than_classic = self._below_classic()
        if worse_than_classic:
            return (
                f"the fine-tuned model is worse than the classic engine ({worse_than_classic}), so "
                f"it was not installed ({change}). Its weights are in {self.run_dir / 'last.pt'}"
            )
        return (
            f"fine-tuning did not help ({change}); the model was not installed. Its weights are in "
            f"{self.run_dir / 'last.pt'} (install anyway with: scubasteve models import {self.name} "
            f"{self.run_dir / 'last.pt'} --kind deepmask)"
        )

    def _below_classic(self) -> str:
        """How the result's top-1 falls short of the classic engine's ("" when it does not)."""
        if self.classic is None or self.classic.objects == 0:
            return ""
        mine = self.after.summary()["top1_mean_iou"]
        classic = self.classic.summary()["top1_mean_iou"]
        return f"top-1 {mine:.3f} against {classic:.3f}" if mine < classic else ""

    def helped(self) -> bool:
        """Not worse than the start, top-1 and best of ten, nor than the classic engine."""
        top1, best = self.gain()
        return top1 >= 0 and best >= 0 and not self._below_classic()

    def _against_classic(self) -> str:
        from scubasteve.inference.engines import deepmask_trust

        if self.classic is None:
            return ""
        _, left_out = deepmask_trust(heldout_record(self.after, self.classic), repr(self.name))
        return f". Note: {left_out}" if left_out else ""


def _engine(net: Any, cfg: Any, device: str) -> Any:
    from scubasteve.inference.deepmask.proposer import DeepMaskProposer

    return DeepMaskProposer(copy.deepcopy(net), cfg, device)


def learn_from_project(
    folder: Path,
    *,
    init: str | Path | None = None,
    name: str = "deepmask-project",
    epochs: int = 5,
    holdout: float = 0.2,
    device: str = "cpu",
    batch_size: int = 16,
    lr: float = 1e-3,
    limit: int | None = None,
    batches_per_epoch: int | None = None,
    progress: ProgressCallback | None = None,
    on_epoch: Callable[[Any], None] | None = None,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> LearnReport | None:
    """Measure, fine-tune on the training part, measure again, install when not worse.

    `progress` and `on_epoch` are the trainer's callbacks; `cancel` stops any stage (measuring
    or training) with `Cancelled`, and then nothing is installed. Inside a process group of
    `--workers N` every process trains its share; only rank 0 measures, installs and returns the
    report, the others return None."""
    from scubasteve.inference.deepmask.weights import register
    from scubasteve.training.deepmask.group import is_worker
    from scubasteve.weights import WeightsNotInstalled, resolve_weights

    data = load_dataset(labelme=Path(folder))
    split = split_dataset(data, holdout, seed)
    holdout_docs = split.val_docs
    train_ids = set(split.train_ids)
    n_train = sum(1 for inst in split.instances if inst.doc in train_ids)
    if n_train < MIN_TRAIN_OBJECTS:
        raise InputError(
            f"too little to learn from: {n_train} accepted objects in the training images (at "
            f"least {MIN_TRAIN_OBJECTS} are needed); nothing was trained or installed",
            folder,
        )

    start_from: Path | str | None = init
    if init is None:
        try:
            start_from = resolve_weights(None, kind="deepmask")
        except WeightsNotInstalled:
            start_from = None  # nothing installed: learn from scratch (and say so)
    net, cfg, start = starting_network(start_from)
    worker = is_worker()
    if not worker:
        before = evaluate_boxes(_engine(net, cfg, device), holdout_docs, limit=limit, cancel=cancel)

    run_dir = default_run_dir(f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not worker:  # the others train in a scratch folder (DistributedTrainer)
        run_dir.mkdir(parents=True, exist_ok=True)
    options = TrainOptions(
        epochs=epochs, batch_size=batch_size, lr=lr, batches_per_epoch=batches_per_epoch, seed=seed
    )
    # The held-out images measure before and after; they never validate (or select) the model.
    result = train(
        replace(split, val_ids=[]), net, cfg, options, run_dir, device, progress=progress,
        on_epoch=on_epoch, meta={"project": str(folder), "start": start}, cancel=cancel,
    )  # fmt: skip
    if worker:
        return None
    after = evaluate_boxes(_engine(net, cfg, device), holdout_docs, limit=limit, cancel=cancel)
    classic = classic_quality(holdout_docs, limit=limit, cancel=cancel)
    raise_if_cancelled(cancel)
    report = LearnReport(
        start, before, after, len(split.train_ids), len(split.val_ids), run_dir, None, name, classic
    )
    if after.objects == 0:
        raise InputError(
            "the held-out images have no objects to measure; use a larger --holdout", folder
        )
    if report.helped() and result.final is not None:
        top1, best = report.gain()
        report.installed = register(
            name,
            "deepmask",
            result.final,
            {
                "project": str(folder),
                "start": start,
                "holdout_top1_gain": top1,
                "holdout_best_gain": best,
                "holdout_best_mean_iou": after.summary()["best_mean_iou"],
                "heldout": heldout_record(after, classic),
            },
        )
    return report
