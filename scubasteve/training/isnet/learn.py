"""Learning from the user with IS-Net: fine-tune on a project's accepted masks and say if it helped.

What `scubasteve train from-project FOLDER` and the window's "Improve from this folder" run when
IS-Net weights are installed. The folder's LabelMe files (accepted shapes only: pre-annotations
awaiting review are not training data) are split by image; the installed IS-Net (or `init`) is
measured on the held-out images, fine-tuned on the rest, measured again, and installed as `name`
only when the default engine's held-out top-1 did not get worse (`run.fine_tune`). A small project
holds out more images (up to half) so that the measurement has enough objects; one too small for
that is refused before any work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.evaluation.proposal_quality import format_quality
from scubasteve.training.isnet.data import box_objects
from scubasteve.training.isnet.run import (
    MIN_HELDOUT_OBJECTS,
    MIN_TRAIN_OBJECTS,
    RunReport,
    split_and_fine_tune,
    split_images,
)
from scubasteve.training.isnet.trainer import IsnetTrainOptions
from scubasteve.training.progress import ProgressCallback

#: Held-out shares tried, in order, when the asked one measures too few objects.
HOLDOUT_STEPS = (0.25, 0.3, 0.35, 0.4, 0.5)


@dataclass
class IsnetLearnReport:
    """A project run's outcome in the shape the window and the command line show (as DeepMask's
    `LearnReport`): `installed` is the model's name when it was installed, else None."""

    run: RunReport
    name: str
    folder: Path

    @property
    def installed(self) -> str | None:
        return self.run.installed or None

    def verdict(self) -> str:
        text = f"IS-Net: {self.run.verdict}"
        if self.installed:
            text += f"; installed as {self.name!r} and used by the engines from now on"
        return text

    def table(self) -> str:
        run = self.run
        head = (
            f"{run.split.how}: {run.train_objects} objects to train on, "
            f"{run.heldout_objects} held out"
        )
        if run.before is None or run.after is None:
            return "\n".join([head, *run.notes])
        rows = [
            ("IS-Net before", run.before.isnet),
            ("IS-Net after", run.after.isnet),
            ("default engine before", run.before.default),
            ("default engine after", run.after.default),
        ]
        return "\n".join([head, format_quality(rows, timings=False), *run.notes])


def learn_from_project(
    folder: Path,
    *,
    init: str | Path | None = None,
    name: str = "isnet-project",
    epochs: int = 5,
    holdout: float = 0.2,
    device: str = "auto",
    input_size: int = 384,
    batch_size: int = 4,
    lr: float = 5e-5,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> IsnetLearnReport:
    """Measure, fine-tune on the training images, measure again, install when not worse.
    `holdout`: the share of images held out (raised where too few objects would be measured)."""
    from scubasteve.training.deepmask.run import default_run_dir, load_dataset

    data = load_dataset(labelme=Path(folder))
    if len(data.docs) < 2:
        raise InputError(
            f"too little to learn from: {len(data.docs)} image(s) with accepted annotations "
            "(at least 2 are needed: one to learn from, one to measure on)",
            folder,
        )
    options = IsnetTrainOptions(
        input_size=input_size, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
    )
    fraction = _holdout_that_measures(data.docs, holdout, seed, folder)
    run = split_and_fine_tune(
        data.docs,
        "fraction",
        fraction,
        base=init,
        run_dir=default_run_dir(f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"),
        name=name,
        options=options,
        device=device,
        progress=progress,
        cancel=cancel,
        meta={"project": str(folder)},
    )
    return IsnetLearnReport(run, name, Path(folder))


def _holdout_that_measures(
    docs: Sequence[ImageDoc], holdout: float, seed: int, folder: Path
) -> float:
    """`holdout`, or the smallest larger fraction (up to half the images) that leaves enough
    objects both to learn from and to measure on; `InputError` when none does, before any work."""
    n_objects = len(box_objects(docs))
    for fraction in sorted({holdout, *(f for f in HOLDOUT_STEPS if f > holdout)}):
        split = split_images(len(docs), "fraction", fraction, seed)
        held = len(box_objects([docs[i] for i in split.heldout]))
        if held >= MIN_HELDOUT_OBJECTS and n_objects - held >= MIN_TRAIN_OBJECTS:
            return fraction
    raise InputError(
        f"too little to learn from: {n_objects} accepted objects in {len(docs)} images (at least "
        f"{MIN_TRAIN_OBJECTS} to learn from and {MIN_HELDOUT_OBJECTS} on other images to measure "
        "on are needed); nothing was trained or installed",
        folder,
    )
