"""The one progress callback of long work: `progress(done, total)`.

Work that counts units (images of a pre-annotation run, bytes of a download, epochs of learning)
takes `progress: Progress | None` and calls it after each unit; `total` is 0 when unknown. The
caller decides what to show: the command line a tqdm bar (`scubasteve.cli.progress`), the window
a progress bar (through `scubasteve.gui.workers.submit_job`, which delivers the calls on the GUI
thread). Training also reports its richer `training.progress.TrainProgress` per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: `progress(done, total)`: `done` units of `total` are finished (`total` 0: not known).
Progress = Callable[[int, int], None]


def counted(items: Sequence[T], progress: Progress | None) -> Iterator[T]:
    """Yield `items`, reporting `progress(done, len(items))` after each one (None: silently)."""
    for done, item in enumerate(items, 1):
        yield item
        if progress is not None:
            progress(done, len(items))
