"""Progress bars for long CLI work (tqdm on stderr, silent when stderr is not a terminal).

The only module that draws them: the layers below report `core.progress.Progress` calls
(`progress(done, total)`) or `training.progress.TrainProgress`, and the command line turns them
into bars here.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TypeVar

from scubasteve.training.progress import ProgressCallback, TrainProgress

T = TypeVar("T")


class ProgressBar:
    """A tqdm bar fed by `progress(done, total)` calls (a `core.progress.Progress`).

    The bar appears at the first call; `done` may restart at 0 (a download that starts again).
    `unit="B"` shows bytes with SI prefixes.
    """

    def __init__(self, desc: str, unit: str = "B") -> None:
        self.desc, self.unit = desc, unit
        self.bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        from tqdm import tqdm

        total = total or None
        if self.bar is None:
            self.bar = tqdm(total=total, initial=done, unit=self.unit, unit_scale=self.unit == "B",
                            desc=self.desc, file=sys.stderr, dynamic_ncols=True,
                            disable=None)  # fmt: skip
            return
        if total != self.bar.total:
            self.bar.total = total
        if done < self.bar.n:
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)

    def set_postfix(self, **values: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def tqdm_bars(**shown: str) -> ProgressCallback:
    """A trainer's `progress` callback for the command line: one tqdm bar per epoch on stderr.

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
