"""What a training loop reports while it runs: one `TrainProgress` per step, for a CLI bar or the GUI.

Both trainers (DeepMask in `training/deepmask/trainer.py`, Mask R-CNN in `training/maskrcnn/train.py`) take a
`progress` callback and a `CancelToken` directly: progress is a plain callback, and cancelling
is the token (checked between steps), never an exception raised from inside a progress bar.
The command line's callback is `scubasteve.cli.progress.tqdm_bars`; `epochs_done` turns the steps
into the one progress type of long work (`core.progress.Progress`) for the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scubasteve.core.progress import Progress


@dataclass(frozen=True)
class TrainProgress:
    """Sent when an epoch starts (`step` 0, no loss yet) and after every training step.

    `loss`: the step's total loss (NaN when the trainer has none); `losses`: named parts
    (Mask R-CNN: its five losses of the step; DeepMask: mean recent "mask" and "score" losses).
    """

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based; 0 when the epoch starts
    steps: int
    loss: float
    losses: dict[str, float]


ProgressCallback = Callable[[TrainProgress], None]


def epochs_done(progress: Progress) -> ProgressCallback:
    """A trainer's callback that reports finished epochs as `progress(done, epochs)`, once each
    (the window's progress bar counts epochs; 0 is taken as already reported)."""
    last = 0

    def on_step(step: TrainProgress) -> None:
        nonlocal last
        done = step.epoch if step.step >= step.steps else step.epoch - 1
        if done != last:
            last = done
            progress(done, step.epochs)

    return on_step
