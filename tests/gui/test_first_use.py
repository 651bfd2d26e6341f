"""What a first use of the window hit (issue 12): shortcuts, the strip, clicks, tools, start page."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.gui_input import click, drag_box, key
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from scubasteve.core.geometry import Box

pytestmark = pytest.mark.gui


def _key_events(seq: QKeySequence) -> list[tuple[Qt.Key, Qt.KeyboardModifier]]:
    """The key events that type `seq`; Shift+Tab is also sent as X11 sends it (Shift+Backtab)."""
    combo = seq[0]
    k, mods = combo.key(), combo.keyboardModifiers()
    events = [(k, mods)]
    if k == Qt.Key.Key_Tab and mods & Qt.KeyboardModifier.ShiftModifier:
        events.append((Qt.Key.Key_Backtab, mods))
    return events


def test_every_default_shortcut_triggers_its_own_action_and_nothing_is_ambiguous(qtbot, qtlog):
    from PySide6.QtWidgets import QMainWindow, QWidget

    from scubasteve.gui.actions import ACTIONS, ActionRegistry

    window = QMainWindow()
    target = QWidget()
    target.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    window.setCentralWidget(target)
    registry = ActionRegistry(window)
    fired: list[str] = []
    for action_id, action in registry.actions.items():
        window.addAction(action)
        action.triggered.connect(lambda _c=False, a=action_id: fired.append(a))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitActive(window):
        window.activateWindow()
    target.setFocus()

    seen: dict[str, str] = {}
    for spec in ACTIONS:
        for seq in registry[spec.id].shortcuts():
            text = seq.toString()
            assert text not in seen, f"{text} is bound to {seen.get(text)} and {spec.id}"
            seen[text] = spec.id
            for k, mods in _key_events(seq):
                fired.clear()
                QTest.keyClick(target, k, mods)
                assert fired == [spec.id], f"{text} ({k}, {mods}) fired {fired}"
    ambiguous = [r.message for r in qtlog.records if "Ambiguous" in r.message]
    assert not ambiguous, ambiguous
    assert "Backtab" not in seen, "Backtab and Shift+Tab on one action clash on X11"


def test_the_strip_never_changes_the_window_size(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.resize(900, 700)
    qtbot.wait(50)
    before = window.size()
    least = window.centralWidget().minimumSizeHint().width()
    for box in (Box(80, 60, 240, 180), Box(20, 20, 300, 220), Box(100, 100, 140, 130)):
        drag_box(window, box)
        qtbot.waitUntil(lambda: window.strip.shown == 10, timeout=5000)
        qtbot.wait(50)
        assert window.size() == before
    assert window.strip.minimumSizeHint().width() < 300
    assert window.centralWidget().minimumSizeHint().width() == least


def test_fewer_proposals_are_counted_and_a_missing_key_answers(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.proposals.k = 6
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    assert window.strip.shown == 6
    assert "6 proposals" in window.strip._count.text() and "1–6" in window.strip._count.text()
    messages: list[str] = []
    window.status.messageChanged.connect(messages.append)
    key(window, Qt.Key.Key_8)
    assert window.proposals.current == 0
    assert any("only 6 proposals" in m for m in messages), messages


def test_ctrl_z_and_backspace_remove_the_last_click(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    for button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
        before = window.proposals.result.request_id
        click(window, 160, 120, button)
        qtbot.waitUntil(lambda b=before: window.proposals.result.request_id > b, timeout=5000)
    assert [p.positive for p in window.proposals.points] == [True, False]
    assert [m.childItems()[0].text() for m in window.scene._markers] == ["1", "2"]
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [p.positive for p in window.proposals.points] == [True]
    qtbot.waitUntil(lambda: window.proposals.result.points == window.proposals.points, timeout=5000)
    key(window, Qt.Key.Key_Backspace)
    assert window.proposals.points == ()
    qtbot.waitUntil(lambda: window.proposals.result.points == (), timeout=5000)
    assert window.proposals.result.box is not None  # still the same box, now without clicks
    # Without clicks, Ctrl+Z is the document's undo again (nothing to undo here).
    assert window.documents.current.doc.annotations == []


def test_the_active_tool_is_checked_and_the_hint_follows_it(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    assert window.actions["tool_box"].isChecked()
    assert "Drag a box" in window.strip._hint.text()
    key(window, Qt.Key.Key_P)
    assert window.actions["tool_polygon"].isChecked()
    assert not window.actions["tool_box"].isChecked()
    assert "Polygon" in window.strip._hint.text() and "Drag a box" not in window.strip._hint.text()
    key(window, Qt.Key.Key_V)
    assert window.actions["tool_edit"].isChecked() and "Edit" in window.strip._hint.text()


def test_start_page_without_a_folder_then_recent_folders(qtbot, tmp_path, image_folder):
    from scubasteve.core.settings import Settings
    from scubasteve.gui.main_window import MainWindow

    window = MainWindow(Settings(engine="classic", recent_folders=[str(image_folder)]),
                        proposer_factory=lambda n, d: None, save_settings_on_close=False)  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    assert window.pages.currentWidget() is window.start_page
    assert not window.strip.isVisible()
    assert window.start_page.recent_shown == [str(image_folder)]
    assert "Ctrl+O" in window.start_page.open_button.text()
    window.start_page._recent_buttons[0].click()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.view, timeout=5000)
    assert window.strip.isVisible()
    assert window.settings.recent_folders[0] == str(image_folder)


def test_export_defaults_beside_the_folder() -> None:
    from scubasteve.io.project_export import default_export_path

    assert default_export_path(Path("/data/photos")) == Path("/data/photos_coco.json")


def test_label_picker_opens_at_the_cursor_over_the_image(make_window, image_folder, qtbot):
    from PySide6.QtGui import QCursor

    window = make_window(image_folder)
    vp = window.view.viewport()
    inside = vp.mapToGlobal(QPoint(vp.width() // 2, vp.height() // 2))
    QCursor.setPos(inside)
    if QCursor.pos() != inside:
        pytest.skip("this platform cannot move the cursor")
    key(window, Qt.Key.Key_L)
    assert window.label_picker.isVisible()
    assert (window.label_picker.pos() - inside).manhattanLength() < 5
    window.label_picker.hide()


def test_annotation_list_shows_label_and_number_and_instance_colours(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    window.annotator.set_label("dog")
    for box in (Box(20, 20, 120, 120), Box(150, 60, 300, 200)):
        drag_box(window, box)
        qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
        key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.annotations_panel.list.count() == 2, timeout=5000)
    items = [window.annotations_panel.list.item(i) for i in range(2)]
    assert [i.text() for i in items] == ["dog 1", "dog 2"]
    assert "fake:0" in items[0].toolTip()
    colours = {i.brush().color().name() for i in window.scene._annotation_items.values()}
    assert len(colours) == 1  # one colour per label by default
    window.scene.instance_colors = True
    window.annotator.refresh()
    colours = {i.brush().color().name() for i in window.scene._annotation_items.values()}
    assert len(colours) == 2


def test_preannotate_text_is_reset_when_the_image_changes(make_window, image_folder, qtbot):
    from scubasteve.gui.views.panels import PREANNOTATE_TEXT

    window = make_window(image_folder)
    window.preannotate_panel.status.setText("3 objects found in img0.png")
    first = window.annotator.entry.path
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path != first, timeout=5000)
    assert window.preannotate_panel.status.text() == PREANNOTATE_TEXT


def test_closing_right_after_enter_saves_the_object_and_does_not_wait_for_the_engine(
    make_window, image_folder, qtbot
):
    import json
    import time

    from helpers.gui_fakes import FakeProposer

    slow = FakeProposer()
    window = make_window(image_folder, slow)
    window.annotator.set_label("dog")
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    key(window, Qt.Key.Key_Return)  # outlined on a worker, saved on another
    slow.delay = 3.0  # the engine is then busy with a box for seconds
    drag_box(window, Box(20, 20, 120, 120))
    start = time.perf_counter()
    window.close()
    closed_in = time.perf_counter() - start
    saved = json.loads(window.documents.current.json_path.read_text(encoding="utf-8"))
    assert [s["label"] for s in saved["shapes"]] == ["dog"]
    assert window.closed_cleanly
    assert closed_in < 2.0, f"close waited {closed_in:.1f} s"
