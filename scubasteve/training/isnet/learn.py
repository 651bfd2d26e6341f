"""Learning from the user with IS-Net: fine-tune on a project's accepted masks and say if it helped.

What `scubasteve train from-project FOLDER` and the window's "Improve from this folder" run when
IS-Net weights are installed. The folder's LabelMe files (accepted shapes only: pre-annotations
awaiting review are not training data) are split by image; the installed IS-Net (or `init`) is
measured on the held-out images, fine-tuned on the rest, measured again, and installed as `name`
only when the default engine's held-out top-1 did not get worse (`run.fine_tune`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.evaluation.proposal_quality import format_quality
from scubasteve.training.isnet.run import RunReport, split_and_fine_tune
from scubasteve.training.isnet.trainer import IsnetTrainOptions
from scubasteve.training.progress import ProgressCallback


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
    lr: float = 3e-5,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> IsnetLearnReport:
    """Measure, fine-tune on the training images, measure again, install when not worse."""
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
    run = split_and_fine_tune(
        data.docs,
        "fraction",
        holdout,
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
