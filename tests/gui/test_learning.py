"""Learning from the folder's annotations in the app: progress, cancel, the new model in use."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.gui_input import key
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from scubasteve.core.cancel import CancelToken
from scubasteve.gui.controllers.learning import model_name_for
from scubasteve.gui.views.report_dialog import ReportDialog
from scubasteve.training.progress import TrainProgress

pytestmark = pytest.mark.gui

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@dataclass
class FakeReport:
    name: str
    installed: Path | None

    def verdict(self) -> str:
        return "fine-tuning helped (fake)" if self.installed else "did not help (fake)"

    def table(self) -> str:
        return "| fake |"


def test_the_action_trains_in_the_background_then_serves_the_new_model(
    make_window, image_folder, qtbot, tmp_path
):
    calls: list[tuple[Path, dict]] = []
    engines: list[str] = []
    window = make_window(image_folder, factory=lambda name, device: _record(engines, name))

    def learn(folder: Path, **options):  # type: ignore[no-untyped-def]
        calls.append((folder, options))
        epochs = options["epochs"]
        for epoch in range(1, epochs + 1):
            for step in range(4):  # the trainer reports the start and three batches
                options["progress"](TrainProgress(epoch, epochs, step, 3, math.nan, {}))
        return FakeReport(options["name"], tmp_path / "new.pt")

    window.learning._learn = learn
    window.settings.deepmask_model = "start-model"
    qtbot.waitUntil(lambda: len(engines) == 1, timeout=5000)
    progress: list[tuple[int, int]] = []
    window.learning.progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(window.learning.finished, timeout=10000):
        key(window, Qt.Key.Key_L, CTRL_SHIFT)
    folder, options = calls[0]
    assert folder == image_folder.resolve() and options["init"] == "start-model"
    assert options["name"] == model_name_for(image_folder) == "deepmask-photos"
    assert progress == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # once per epoch
    assert window.settings.deepmask_model == "deepmask-photos"
    qtbot.waitUntil(lambda: len(engines) == 2, timeout=5000)  # the engine was made again
    assert not window.learning.running
    assert window.actions["learn"].text().startswith("Improve the engine")
    # The verdict is a dialog the user must close, not a status-bar line that goes by.
    dialog = window.findChild(ReportDialog, "reportDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.verdict.text() == "fine-tuning helped (fake)"
    assert dialog.details.toPlainText() == "| fake |"
    QTest.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=2000)


def test_the_same_action_cancels_and_nothing_changes(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    started, messages = threading.Event(), []

    def learn(folder: Path, *, cancel: CancelToken, **options):  # type: ignore[no-untyped-def]
        started.set()
        while True:  # a batch at a time until cancelled, like the trainer
            cancel.raise_if_cancelled()
            threading.Event().wait(0.005)

    window.learning._learn = learn
    window.learning.message.connect(messages.append)
    key(window, Qt.Key.Key_L, CTRL_SHIFT)
    qtbot.waitUntil(lambda: started.is_set() and window.learning.running, timeout=5000)
    assert window.actions["learn"].text() == "Cancel learning"
    key(window, Qt.Key.Key_L, CTRL_SHIFT)
    qtbot.waitUntil(lambda: not window.learning.running, timeout=5000)
    assert any("cancelled; nothing was installed" in m for m in messages)
    assert window.settings.deepmask_model == ""


def test_a_folder_without_enough_annotations_gets_a_message(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    messages: list[str] = []
    window.learning.message.connect(messages.append)
    window.learning.epochs = 1
    key(window, Qt.Key.Key_L, CTRL_SHIFT)  # the real learning code: no annotations at all here
    qtbot.waitUntil(lambda: not window.learning.running and len(messages) >= 2, timeout=20000)
    assert "Could not learn from this folder" in messages[-1]
    assert "no annotated images" in messages[-1]
    dialog = window.findChild(ReportDialog, "reportDialog")  # said where it cannot be missed
    assert dialog is not None and "no annotated images" in dialog.verdict.text()


def _record(engines: list[str], name: str):  # type: ignore[no-untyped-def]
    from helpers.gui_fakes import FakeProposer

    engines.append(name)
    return FakeProposer()


def test_real_learning_on_a_small_project_installs_and_reports(
    make_window, tmp_path, qtbot, monkeypatch
):
    torch = pytest.importorskip("torch")
    from helpers.deepmask_data import write_labelme_project

    from scubasteve.training.deepmask import learn

    monkeypatch.setattr(learn, "MIN_TRAIN_OBJECTS", 1)  # a tiny project: the flow, not the gain
    from scubasteve.inference.deepmask import network as N
    from scubasteve.inference.deepmask.checkpoint import save_weights
    from scubasteve.inference.deepmask.config import tiny_config
    from scubasteve.inference.deepmask.weights import register

    folder = write_labelme_project(tmp_path / "project", 6)
    cfg = tiny_config(trunk_width=8)
    torch.manual_seed(0)
    register(
        "tiny",
        "deepmask",
        save_weights(tmp_path / "t.pt", N.build_network(cfg).state_dict(), cfg, {}),
        {},
    )
    window = make_window(folder)
    window.settings.deepmask_model = "tiny"
    window.learning.epochs = 1
    messages: list[str] = []
    window.learning.message.connect(messages.append)
    with qtbot.waitSignal(window.learning.finished, timeout=120000) as blocker:
        key(window, Qt.Key.Key_L, CTRL_SHIFT)
    report = blocker.args[0]
    assert report.before.objects == report.after.objects >= 1 and report.classic is not None
    assert messages[-1].startswith("Learning: ")
    if report.installed is not None:
        assert window.settings.deepmask_model == "deepmask-project"
    else:
        assert window.settings.deepmask_model == "tiny" and "not installed" in messages[-1]


def test_learning_starts_once_the_last_change_is_written_without_blocking_the_window(
    make_window, image_folder, qtbot, tmp_path
):
    # The window used to wait up to 10 s on the GUI thread (documents.flush) before learning.
    import json

    from helpers.gui_input import accept_box

    from scubasteve.core.geometry import Box

    window = make_window(image_folder)
    seen: list[int] = []

    def learn(folder: Path, **options):  # type: ignore[no-untyped-def]
        data = json.loads((folder / "img1.json").read_text())
        seen.append(len(data["shapes"]))
        return FakeReport(options["name"], None)

    window.learning._learn = learn
    window.annotator.set_label("cat")
    release = threading.Event()
    original = window.documents._pool  # the save thread: held until the test lets it write
    original.start(lambda: release.wait(5))
    accept_box(window, qtbot, Box(80, 60, 240, 180))
    assert window.documents.unsaved
    key(window, Qt.Key.Key_L, CTRL_SHIFT)  # returns at once: the write is still held
    assert not window.learning.running and seen == []
    release.set()
    qtbot.waitUntil(lambda: seen == [1], timeout=5000)  # learned from the written file
