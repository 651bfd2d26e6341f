"""What the window says, and where, as a new user met it (issue 22 item 17) and the small layout
and label-picker slips (item 18)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers.gui_fakes import FakeProposer
from helpers.gui_input import drag_box, key
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from scubasteve.core.geometry import Box

pytestmark = pytest.mark.gui


def _status_text(window) -> str:  # type: ignore[no-untyped-def]
    return window.status.currentMessage()


def test_a_read_only_image_gives_its_reason_once_and_the_notice_goes_with_the_image(
    make_window, image_folder, qtbot
):
    broken = image_folder / "img1.json"
    broken.write_text('{"shapes": [ {"label": "cat", ', encoding="utf-8")
    window = make_window(image_folder)
    window.project.go(0)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img1.png", timeout=5000)
    reason = window.annotator.entry.problem
    drag_box(window, Box(80, 60, 240, 180))
    assert window.notice.isVisible() and "read-only" in window.notice.text.text()
    shown = [window.banner.text(), window.notice.text.text(), _status_text(window)]
    assert sum(reason in text for text in shown) == 1, shown  # the banner only

    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    assert not window.notice.isVisible(), "the notice was about the previous image"
    assert "Nothing drawn" not in _status_text(window)


def test_a_message_too_long_for_the_status_bar_is_shown_whole_above_the_image(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    long = "Pre-annotation skipped " + "/very/long/folder/name" * 12 + "/img.png: cannot decode"
    window.show_message(long)
    assert window.notice.isVisible()
    assert window.notice.text.text().replace("\u200b", "") == long
    window.show_message("Short news.")
    assert _status_text(window) == "Short news."


def test_a_long_message_in_the_pre_annotate_dock_wraps_and_the_dock_keeps_its_width(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    dock = window.docks["Pre-annotate"]
    width = dock.width()
    long = "Pre-annotation is not available: " + "/models/mask_rcnn_coco" * 10 + ".h5 is missing"
    window.preannotate.message.emit(long)
    QTest.qWait(50)
    assert dock.width() == width
    status = window.preannotate_panel.status
    assert status.text().replace("\u200b", "") == long and status.toolTip() == long


def test_choosing_cuda_without_a_gpu_says_the_engine_runs_on_the_cpu(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder, FakeProposer())  # its device is "cpu"
    settings = window.settings.__class__(**{**window.settings.__dict__, "device": "cuda"})
    window.apply_settings(settings)
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=5000)
    text = window.notice.text.text()
    assert "CUDA" in text and "CPU" in text


def test_without_a_display_the_window_says_so_instead_of_qts_plugin_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["SCUBASTEVE_CONFIG_DIR"] = str(tmp_path)
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY decides only on Linux")
    run = subprocess.run(
        [sys.executable, "-m", "scubasteve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "no display" in run.stderr.lower()
    assert "xcb-cursor" not in run.stderr and "platform plugin" not in run.stderr


def test_the_label_button_keeps_the_toolbar_still_whatever_the_label(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    tool = window.actions["tool_box"]
    bar = window.findChild(type(window.addToolBar("probe")), "tools")
    button = bar.widgetForAction(tool)
    window.annotator.set_label("cat")
    QTest.qWait(20)
    x = button.pos().x()
    window.annotator.set_label("a very long label name indeed for this object")
    QTest.qWait(20)
    assert button.pos().x() == x
    assert "a very long label" in window.label_button.toolTip()


def test_the_time_table_does_not_widen_its_dock(make_window, image_folder, qtbot):
    from scubasteve.gui.stats import LabelTiming

    window = make_window(image_folder)
    dock = window.docks["Time per object"]
    width = dock.width()
    row = LabelTiming("a label with a rather long name", 12345, 12.3456)
    window.stats_panel.show_timings(row, [row])
    QTest.qWait(50)
    assert dock.width() == width


@pytest.mark.parametrize(
    ("typed", "labels", "expected"),
    [
        ("ball", ["ball boy", "ball"], "ball"),  # an exact match wins over an earlier one
        ("spo", ["sports ball", "ball"], "sports ball"),  # a prefix still picks quickly
    ],
)
def test_label_picker_prefers_an_exact_match(
    make_window, image_folder, qtbot, typed, labels, expected
):
    window = make_window(image_folder)
    window.annotator.set_labels(labels, [])
    key(window, Qt.Key.Key_L)
    picker = window.label_picker
    QTest.keyClicks(picker.filter, typed)
    QTest.keyClick(picker.filter, Qt.Key.Key_Return)
    assert window.annotator.label == expected


def test_label_picker_adds_what_was_typed_with_shift_enter(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.annotator.set_labels(["sports ball", "person"], [])
    key(window, Qt.Key.Key_L)
    picker = window.label_picker
    QTest.keyClicks(picker.filter, "ball")
    assert picker.list.currentItem().text() == "sports ball"  # Enter would take this one
    assert "Shift+Enter" in picker.hint.text()
    QTest.keyClick(picker.filter, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert window.annotator.label == "ball"
    assert "ball" in window.annotator.labels.ordered()
