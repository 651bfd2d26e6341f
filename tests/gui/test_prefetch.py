"""The next image reaches engines that can prepare it ahead (SAM 2's embedding), off the GUI thread."""

from __future__ import annotations

import numpy as np
from helpers.gui_fakes import FakeProposer


class PrefetchingProposer(FakeProposer):
    """Records the images offered for preparation ahead."""

    def __init__(self) -> None:
        super().__init__()
        self.prefetched: list[np.ndarray] = []

    def prefetch(self, image: np.ndarray) -> None:
        self.prefetched.append(image)


def test_the_preloaded_next_image_is_prefetched_by_the_engine(make_window, image_folder, qtbot):  # type: ignore[no-untyped-def]
    proposer = PrefetchingProposer()
    window = make_window(image_folder, proposer)
    qtbot.waitUntil(lambda: len(proposer.prefetched) >= 1, timeout=5000)
    shown = window.annotator.entry.rgb
    ahead = proposer.prefetched[0]
    assert ahead.shape != shown.shape or not np.array_equal(ahead, shown)
    window.project.step(1)  # the prefetched image is the one that comes next
    qtbot.waitUntil(lambda: window.annotator.entry.rgb is not shown, timeout=5000)
    assert np.array_equal(window.annotator.entry.rgb, ahead)
