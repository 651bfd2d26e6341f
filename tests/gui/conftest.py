"""GUI test fixtures: a folder of small images and a main window driven by fake engines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.gui_fakes import FakeProposer, FakeSegmenter, make_images

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    make_images(folder)
    (folder / "labels.txt").write_text("cat\ndog\nperson\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_window(qtbot):  # type: ignore[no-untyped-def]
    """Build a MainWindow on a folder with a given proposer; waits until the first image shows."""
    from scubasteve.core.settings import Settings
    from scubasteve.gui.main_window import MainWindow

    windows = []

    def build(
        folder: Path,
        proposer: FakeProposer | None = None,
        factory: Callable | None = None,
        wait_image: bool = True,
    ):  # type: ignore[no-untyped-def]
        proposer = proposer or FakeProposer()
        factory = factory or (lambda name, device: proposer)
        window = MainWindow(
            Settings(engine="classic"),
            proposer_factory=factory,
            segmenter_factory=FakeSegmenter,
            save_settings_on_close=False,
        )
        window.proposer = proposer
        qtbot.addWidget(window)
        window.resize(1000, 700)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        window.start(folder)
        if wait_image:
            qtbot.waitUntil(lambda: window.annotator.entry is not None, timeout=5000)
        windows.append(window)
        return window

    yield build
    for window in windows:
        window.proposals.discard()
        window.documents.flush(5000)
        window.engine.wait_idle(5000)
        window.preannotate.wait(5000)
        window.pool.waitForDone(5000)
