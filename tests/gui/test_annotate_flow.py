"""End to end in the real window (offscreen): box -> ten proposals -> key 3 -> Enter -> LabelMe on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.gui_fakes import FakeProposer, proposal_mask
from helpers.gui_input import drag_box, key
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from scubasteve.core.geometry import Box, polygons_to_mask
from scubasteve.io.labelme import read_labelme

pytestmark = pytest.mark.gui


def test_accepting_proposal_three_writes_labelme_json_and_undo_removes_it(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    image = window.annotator.entry.path
    window.annotator.set_label("dog")

    box = Box(80, 60, 240, 180)
    drag_box(window, box)
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    assert len(window.proposals.result.views) == 10
    assert window.strip.shown == 10
    assert "IoU≈0.75" in window.strip._buttons[2].text()

    key(window, Qt.Key.Key_3)
    assert window.proposals.current == 2
    key(window, Qt.Key.Key_Return)
    json_path = image.with_suffix(".json")
    qtbot.waitUntil(lambda: json_path.is_file() and not window.documents.unsaved, timeout=5000)

    data = json.loads(json_path.read_text())
    assert [s["label"] for s in data["shapes"]] == ["dog"]
    doc = read_labelme(json_path)
    (ann,) = doc.annotations
    drawn = window.proposer.calls[-1]
    expected = proposal_mask(drawn.clip(320, 240), 2, 320, 240).to_full(240, 320)
    got = polygons_to_mask(ann.polygons, 240, 320)
    assert np.array_equal(got, expected)
    assert ann.seconds is not None and ann.seconds >= 0
    assert ann.score == pytest.approx(0.75)  # the proposal's IoU estimate, not its rank score

    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    assert window.documents.current.doc.annotations == []
    assert json.loads(json_path.read_text())["shapes"] == []


def test_second_box_while_first_is_pending_drops_the_stale_result(make_window, image_folder, qtbot):
    proposer = FakeProposer(delay=0.4)
    window = make_window(image_folder, proposer)
    first = window.proposals.request(Box(10, 10, 100, 100))
    second_box = Box(150, 100, 300, 220)
    drag_box(window, second_box)
    second = window.proposals.pending_id
    assert second is not None and second > first
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    result = window.proposals.result
    assert result.request_id == second
    b = result.views[0].proposal.patch.box()
    assert b.x0 >= 140 and b.y0 >= 90, "the shown proposal belongs to the second box"
    assert window.engine.wait_idle(5000), "the engine thread finished the first request too"
    QApplication.processEvents()  # deliver whatever that request sent back
    assert window.proposals.result.request_id == second
    # The first request's work was either never started or stopped at a cancel check.
    assert len(proposer.calls) == 1 or proposer.cancelled >= 1


def test_tab_cycles_and_escape_discards(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    key(window, Qt.Key.Key_Tab)
    assert window.proposals.current == 1
    key(window, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert window.proposals.current == 0
    key(window, Qt.Key.Key_0)
    assert window.proposals.current == 9
    key(window, Qt.Key.Key_Escape)
    assert window.proposals.result is None
    assert window.documents.current.doc.annotations == []


def test_click_inside_the_box_adds_a_point_and_reproposes(make_window, image_folder, qtbot):
    from helpers.gui_input import click

    window = make_window(image_folder)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    first = window.proposals.result.request_id
    click(window, 160, 120, Qt.MouseButton.RightButton)
    qtbot.waitUntil(
        lambda: window.proposals.result is not None and window.proposals.result.request_id > first,
        timeout=5000,
    )
    assert [p.positive for p in window.proposals.result.points] == [False]


def test_coco_export_writes_the_folder_and_skips_unreadable_files(make_window, image_folder, qtbot):
    from pycocotools.coco import COCO

    (image_folder / "img3.json").write_text("{ broken", encoding="utf-8")
    window = make_window(image_folder)
    window.annotator.set_label("dog")
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.documents.current.doc.annotations) == 1, timeout=5000)
    out = image_folder / "export" / "instances.json"
    out.parent.mkdir()
    window.export_coco(out)
    # Something was left out: the summary is a notice above the image (said once, not also below).
    notice = window.notice.text
    qtbot.waitUntil(lambda: notice.toolTip().startswith("Exported"), timeout=10000)
    coco = COCO(str(out))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert coco.loadCats(ann["category_id"])[0]["name"] == "dog"
    assert "left out 1 image(s) whose annotation file cannot be read: img3.json" in notice.toolTip()
    assert window.notice.isVisible()
    assert "labels.txt" in notice.toolTip()  # why these categories
    assert (image_folder / "img3.json").read_text() == "{ broken"


def test_first_proposals_show_before_the_engine_finishes_and_a_pick_survives(
    make_window, image_folder, qtbot
):
    proposer = FakeProposer(progressive=True)
    window = make_window(image_folder, proposer)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(
        lambda: window.proposals.result is not None and len(window.proposals.result.views) == 3,
        timeout=5000,
    )
    assert window.proposals.result.partial
    key(window, Qt.Key.Key_2)
    picked = window.proposals.result.views[1].proposal.patch.box()
    proposer.release.set()
    qtbot.waitUntil(lambda: not window.proposals.result.partial, timeout=5000)
    assert len(window.proposals.result.views) == 10
    assert window.proposals.result.views[window.proposals.current].proposal.patch.box() == picked


def test_existing_labelme_files_are_shown_when_the_folder_opens(make_window, image_folder, qtbot):
    from scubasteve.core.annotation import Annotation, ImageDoc
    from scubasteve.core.geometry import Polygon
    from scubasteve.io.labelme import write_labelme

    square = Polygon(np.array([[10, 10], [60, 10], [60, 50], [10, 50]], dtype=float))
    doc = ImageDoc(image_folder / "img1.png", 320, 240, [Annotation("cat", (square,))])
    write_labelme(doc, image_folder / "img1.json")
    window = make_window(image_folder)
    window.project.go(0)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img1.png", timeout=5000)
    (ann,) = window.documents.current.doc.annotations
    assert ann.label == "cat"
    assert window.annotations_panel.list.count() == 1
    assert len(window.scene._annotation_items) == 1
    assert window.scene.annotation_at(30, 30) == ann.id


def test_enter_right_after_a_new_box_does_not_accept_the_previous_boxs_proposal(
    make_window, image_folder, qtbot
):
    proposer = FakeProposer(delay=0.3)
    window = make_window(image_folder, proposer)
    window.annotator.set_label("cat")
    drag_box(window, Box(10, 10, 100, 100))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    drag_box(window, Box(150, 100, 300, 220))
    key(window, Qt.Key.Key_Return)  # too early: nothing to accept for the new box yet
    assert window.proposals.pending_accepts == 0, "nothing was taken for tracing"
    assert window.documents.current.doc.annotations == []
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.documents.current.doc.annotations) == 1, timeout=5000)
    assert window.documents.current.doc.annotations[0].bounds().x0 >= 149


@pytest.mark.slow
def test_the_real_classic_engine_proposes_in_the_window(image_folder, qtbot):
    pytest.importorskip("scubasteve.inference.engines")
    from scubasteve.core.settings import Settings
    from scubasteve.gui.main_window import MainWindow

    window = MainWindow(Settings(engine="classic", device="cpu"), save_settings_on_close=False)
    qtbot.addWidget(window)
    window.show()
    window.start(image_folder)
    qtbot.waitUntil(lambda: window.annotator.entry is not None, timeout=10000)
    qtbot.waitUntil(lambda: window.status.engine.text() == "engine: classic", timeout=60000)
    drag_box(window, Box(70, 50, 250, 190))  # the red rectangle is 80..240 x 60..180
    qtbot.waitUntil(
        lambda: window.proposals.result is not None and not window.proposals.result.partial,
        timeout=60000,
    )
    best = window.proposals.result.views[0].proposal.patch.box()
    assert best.iou(Box(80, 60, 240, 180)) > 0.8
    window.proposals.discard()
    window.engine.wait_idle(10000)
    window.pool.waitForDone(10000)
