"""What a training loop reports while it runs: one `TrainProgress` per step, for a CLI bar or the GUI.

Both trainers (DeepMask in `training/deepmask/trainer.py`, Mask R-CNN in `training/maskrcnn/train.py`) take a
`progress` callback and a `CancelToken` directly: progress is a plain callback, and cancelling
is the token (checked between steps), never an exception raised from inside a progress bar.
`tqdm_bars` is the command line's callback.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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


def tqdm_bars(**shown: str) -> ProgressCallback:
    """A `progress` callback for the command line: one tqdm bar per epoch on stderr.

    The bar shows the step's loss (when the trainer has one) and the `shown` parts of
    `TrainProgress.losses`, as label=key (``mask="mrcnn_mask_loss"``).
    """
    from tqdm import tqdm

    bars: dict[int, Any] = {}

    def show(p: TrainProgress) -> None:
        if p.step == 0:
            for old in bars.values():
                old.close()
            bars[p.epoch] = tqdm(
                total=p.steps, desc=f"epoch {p.epoch}/{p.epochs}", unit="step", file=sys.stderr
            )
            return
        bar = bars[p.epoch]
        bar.update(1)
        parts = {"loss": p.loss} if math.isfinite(p.loss) else {}
        parts |= {label: p.losses.get(key, math.nan) for label, key in shown.items()}
        bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
        if p.step >= p.steps:
            bar.close()

    return show
