"""Review workflow of issue 22 phase 2: the image list's filters (item 3), carrying the previous
image's shapes (item 2) and rectangles turned into masks (item 4), all reviewed with Y / N."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.gui_fakes import FakeProposer
from helpers.gui_input import accept_box, key
from PySide6.QtCore import Qt

from scubasteve.core.annotation import REPLACES_KEY, Annotation, ImageDoc
from scubasteve.core.geometry import Box, Polygon
from scubasteve.gui.image_list import FILTERS, RowState
from scubasteve.io.labelme import write_labelme

pytestmark = pytest.mark.gui

SHIFT = Qt.KeyboardModifier.ShiftModifier
#: The red block `make_images` paints on every test image.
BLOCK = Box(80, 60, 240, 180)


def _square(box: Box) -> Polygon:
    return Polygon(
        np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    )


def _write(image: Path, annotations: list[Annotation], flags: dict | None = None) -> None:
    doc = ImageDoc(image, 320, 240, annotations, flags or {})
    write_labelme(doc, image.with_suffix(".json"))


def _shapes(window) -> list[Annotation]:  # type: ignore[no-untyped-def]
    return list(window.documents.current.doc.annotations)


def _wait_idle(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not window.refit.running, timeout=10000)


# -- the image list's filters (item 3) -----------------------------------------------------------


def test_the_image_list_filters_by_state_with_counts_and_opens_the_row_clicked(
    make_window, image_folder, qtbot
):
    _write(image_folder / "img2.png", [Annotation("cat", (_square(BLOCK),))])  # in progress
    window = make_window(image_folder)
    model, panel = window.project.model, window.images_panel
    qtbot.waitUntil(lambda: model.state(1) == RowState.STARTED, timeout=5000)
    texts = [panel.filter.itemText(i) for i in range(panel.filter.count())]
    assert texts == [
        "All (3)", "To do (2)", "In progress (1)", "To review (0)", "Done (0)", "Problem (0)"
    ]  # fmt: skip
    panel.filter.setCurrentIndex([name for name, _ in FILTERS].index("In progress"))
    shown = panel.view.model()
    assert shown.rowCount() == 1 and shown.index(0, 0).data() == "img2.png"
    panel.view.clicked.emit(shown.index(0, 0))  # the filtered row 0 is the folder's row 1
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    key(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)  # finished: leaves the filter
    assert shown.rowCount() == 0 and panel.filter.itemText(4) == "Done (1)"
    panel.filter.setCurrentIndex(0)
    assert panel.view.model().rowCount() == 3
    assert panel.view.currentIndex().row() == 1  # the current image stays marked


# -- carrying the previous image's shapes (item 2) -------------------------------------------------


def test_carry_puts_the_previous_images_shapes_here_for_review_and_y_keeps_them(
    make_window, image_folder, qtbot
):
    proposer = FakeProposer()
    window = make_window(image_folder, proposer)
    window.annotator.set_label("dog")
    accept_box(window, qtbot, BLOCK)
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    calls = len(proposer.calls)
    key(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: len(_shapes(window)) == 1, timeout=10000)
    carried = _shapes(window)[0]
    assert carried.label == "dog" and carried.needs_review
    # The engine was asked about the block where it is in this image, with the old mask as prior.
    assert len(proposer.calls) == calls + 1
    prior = proposer.previous[-1]
    assert prior is not None and prior.box().iou(BLOCK) > 0.95
    assert carried.source.startswith("fake")  # the engine's proposal agreed with the moved mask
    assert window.project.model.state(1) == RowState.REVIEW
    assert window.annotator.selected == carried.id  # Y / N act on it at once

    key(window, Qt.Key.Key_C)  # again: nothing doubles
    _wait_idle(window, qtbot)
    assert len(_shapes(window)) == 1

    key(window, Qt.Key.Key_Y)
    assert not _shapes(window)[0].needs_review
    assert window.project.model.state(1) == RowState.STARTED


def test_carry_reads_the_previous_file_when_that_image_was_not_opened_and_n_rejects(
    make_window, image_folder, qtbot
):
    cat = Annotation("cat", (_square(Box(100, 80, 200, 160)),))
    _write(image_folder / "img1.png", [cat], {"finished": True})
    window = make_window(image_folder)  # opens img2, the first to do
    assert window.annotator.entry.path.name == "img2.png"
    assert window.documents.get(str(image_folder / "img1.png")) is None
    key(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: len(_shapes(window)) == 1, timeout=10000)
    assert _shapes(window)[0].label == "cat"
    key(window, Qt.Key.Key_N)
    assert _shapes(window) == []


def test_shapes_awaiting_review_on_the_previous_image_stay_behind(make_window, image_folder, qtbot):
    cat = Annotation("cat", (_square(Box(100, 80, 200, 160)),))
    waiting = Annotation("dog", (_square(Box(20, 20, 60, 60)),)).for_review()
    _write(image_folder / "img1.png", [cat, waiting], {"finished": True})
    window = make_window(image_folder)
    window.project.go(1)  # img1 is to review (its dog), but the user goes on to img2
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    messages: list[str] = []
    window.refit.message.connect(messages.append)
    key(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: len(_shapes(window)) == 1, timeout=10000)
    assert _shapes(window)[0].label == "cat"
    assert any("1 awaiting review there" in m for m in messages), messages


def test_carry_keeps_the_moved_shape_when_the_engine_fails(make_window, image_folder, qtbot):
    _write(image_folder / "img1.png", [Annotation("cat", (_square(BLOCK),))], {"finished": True})
    window = make_window(image_folder, FakeProposer(fail=RuntimeError("engine broke")))
    key(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: len(_shapes(window)) == 1, timeout=10000)
    carried = _shapes(window)[0]
    assert carried.source == "carried" and carried.needs_review
    assert carried.bounds().iou(BLOCK) > 0.95


def test_carry_on_the_first_image_says_there_is_nothing_before_it(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    messages: list[str] = []
    window.refit.message.connect(messages.append)
    key(window, Qt.Key.Key_C)
    assert messages and "first image" in messages[-1] and _shapes(window) == []


def test_going_to_another_image_cancels_a_carry_in_progress(make_window, image_folder, qtbot):
    _write(image_folder / "img1.png", [Annotation("cat", (_square(BLOCK),))], {"finished": True})
    window = make_window(image_folder, FakeProposer(delay=1.0))
    key(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: window.refit.running, timeout=2000)
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img3.png", timeout=5000)
    assert not window.refit.running
    window.engine.wait_idle(5000)
    qtbot.wait(100)
    assert window.documents.get(str(image_folder / "img2.png")).doc.annotations == []


# -- rectangles to masks (item 4) ---------------------------------------------------------------------


def _rectangle(label: str, box: Box) -> Annotation:
    return Annotation(
        label,
        (_square(box),),
        shape_type="rectangle",
        points=np.array([[box.x0, box.y0], [box.x1, box.y1]]),
        flags={"occluded": True},
    )


def test_rectangles_become_the_engines_top_proposal_for_review_and_n_gives_them_back(
    make_window, image_folder, qtbot
):
    rect = _rectangle("cat", BLOCK)
    other = _rectangle("dog", Box(10, 10, 50, 40))
    _write(image_folder / "img1.png", [rect, other])
    window = make_window(image_folder)
    window.project.go(0)
    qtbot.waitUntil(lambda: len(_shapes(window)) == 2, timeout=5000)
    window.annotator.select(rect.id)  # only the selected rectangle
    key(window, Qt.Key.Key_W, SHIFT)
    qtbot.waitUntil(lambda: _shapes(window)[0].shape_type == "polygon", timeout=10000)
    mask, kept = _shapes(window)
    assert kept.shape_type == "rectangle"  # not selected: left as it was
    assert mask.id == rect.id and mask.label == "cat" and mask.needs_review
    assert mask.source == "fake:0" and mask.flags.get("occluded")  # the top proposal, its flags
    window.documents.flush(5000)
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    saved = json.loads((image_folder / "img1.json").read_text())["shapes"][0]
    assert saved[REPLACES_KEY]["points"] == [[80.0, 60.0], [240.0, 180.0]]  # survives reopening

    key(window, Qt.Key.Key_N)  # rejected: the rectangle is back, not lost
    back = _shapes(window)[0]
    assert back.shape_type == "rectangle" and back.id == rect.id and not back.needs_review
    assert back.bounds() == BLOCK and REPLACES_KEY not in back.extra

    window.annotator.select(None)  # none selected: every rectangle of the image
    key(window, Qt.Key.Key_W, SHIFT)
    qtbot.waitUntil(lambda: all(a.shape_type == "polygon" for a in _shapes(window)), timeout=10000)
    key(window, Qt.Key.Key_Y)
    key(window, Qt.Key.Key_Y)
    assert [a.needs_review for a in _shapes(window)] == [False, False]
    assert all(REPLACES_KEY not in a.extra for a in _shapes(window))


def test_rectangles_to_masks_leaves_locked_rectangles_and_says_when_there_are_none(
    make_window, image_folder, qtbot
):
    _write(image_folder / "img2.png", [_rectangle("cat", BLOCK).with_lock(True)])
    window = make_window(image_folder)
    messages: list[str] = []
    window.refit.message.connect(messages.append)
    key(window, Qt.Key.Key_W, SHIFT)
    assert "No LabelMe rectangles" in messages[-1]
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    key(window, Qt.Key.Key_W, SHIFT)
    assert "locked" in messages[-1] and _shapes(window)[0].shape_type == "rectangle"


def test_a_reopened_folder_opens_on_the_first_image_that_needs_the_user(
    make_window, image_folder, qtbot
):
    # The scan sees only which images have a file (img3 looks like the first to do); the files,
    # read right after, show that img2's shape awaits review.
    _write(image_folder / "img1.png", [Annotation("cat", (_square(BLOCK),))], {"finished": True})
    _write(image_folder / "img2.png", [Annotation("cat", (_square(BLOCK),)).for_review()])
    window = make_window(image_folder)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    assert window.project.model.state(1) == RowState.REVIEW


def test_a_load_that_ends_after_the_user_moved_on_does_not_take_the_window_back(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    first = window.annotator.entry  # img1
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    window.project.loader.loaded.emit(first)  # img1's load, asked for earlier, ends now
    assert window.annotator.entry.path.name == "img2.png"
