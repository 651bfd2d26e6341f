"""PixelLib pre-annotation (with a fake segmenter): current image, whole folder, review keys."""

from __future__ import annotations

import json
import threading

import pytest
from helpers.gui_fakes import FakeSegmenter
from helpers.gui_input import key
from PySide6.QtCore import Qt

from scubasteve.core.annotation import REVIEW_FLAG
from scubasteve.gui.image_list import RowState

pytestmark = pytest.mark.gui


def _pending(window):  # type: ignore[no-untyped-def]
    return [a for a in window.documents.current.doc.annotations if a.flags.get(REVIEW_FLAG)]


def test_preannotating_the_image_adds_results_to_review_with_y_and_n(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    key(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: len(_pending(window)) == 1 and not window.preannotate.running, timeout=5000
    )
    row = window.project.model.row_of(window.annotator.entry.path)
    assert window.project.model.state(row) == RowState.REVIEW
    key(window, Qt.Key.Key_Y)
    anns = window.documents.current.doc.annotations
    assert len(anns) == 1 and not anns[0].flags.get(REVIEW_FLAG) and anns[0].label == "person"
    assert window.project.model.state(row) == RowState.STARTED  # done once marked finished
    key(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: len(_pending(window)) == 1 and not window.preannotate.running, timeout=5000
    )
    key(window, Qt.Key.Key_N)
    assert len(window.documents.current.doc.annotations) == 1


def test_preannotating_the_folder_writes_other_images_files_and_can_be_cancelled(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    progress: list[tuple[int, int]] = []
    window.preannotate.progress.connect(lambda d, t: progress.append((d, t)))
    key(
        window,
        Qt.Key.Key_R,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    qtbot.waitUntil(
        lambda: not window.preannotate.running and progress and progress[-1][0] == 3, timeout=10000
    )
    assert progress[-1] == (3, 3)
    for name in ("img2.json", "img3.json"):
        data = json.loads((image_folder / name).read_text())
        assert [s["label"] for s in data["shapes"]] == ["person"]
        assert data["shapes"][0]["flags"].get(REVIEW_FLAG) is True
    assert window.project.model.count(RowState.REVIEW) == 3
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
    assert len(_pending(window)) == 1, "the file written in the background is what the image shows"

    window.preannotate.run(
        [image_folder / "img1.png", image_folder / "img2.png", image_folder / "img3.png"]
    )
    window.preannotate.cancel()
    qtbot.waitUntil(lambda: not window.preannotate.running, timeout=5000)
    assert progress[-1][0] < 3


class _HeldSegmenter(FakeSegmenter):
    """Holds the first image until the test releases it (a cancel arrives meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.holding, self.release = threading.Event(), threading.Event()

    def detect_async(self, image):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 1:
            self._executor.submit(lambda: (self.holding.set(), self.release.wait(10)))
        return super().detect_async(image)


def test_cancel_mid_folder_finishes_the_current_image_and_writes_nothing_more(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)  # img1 is open
    segmenter = _HeldSegmenter()
    window.preannotate.set_factory(lambda: segmenter)
    progress: list[tuple[int, int]] = []
    window.preannotate.progress.connect(lambda d, t: progress.append((d, t)))
    before = sorted(p.name for p in image_folder.iterdir())
    window.preannotate.run([image_folder / f"img{i}.png" for i in (2, 1, 3)])
    qtbot.waitUntil(segmenter.holding.is_set, timeout=5000)  # img2 is being segmented
    window.preannotate.cancel()
    segmenter.release.set()
    qtbot.waitUntil(lambda: not window.preannotate.running, timeout=5000)
    # The loop queues the next image's detection before it writes the current one (as the
    # command line does), so img1 may have been detected too; it is dropped, never added.
    assert progress[-1] == (1, 3) and segmenter.calls <= 2
    assert (image_folder / "img2.json").is_file() and not (image_folder / "img3.json").exists()
    assert _pending(window) == [], "img1 (open) got nothing after the cancel"
    new = {p.name for p in image_folder.iterdir()} - set(before)
    assert new == {"img2.json"}, f"no temporary files are left: {new}"


def test_missing_pixellib_weights_offer_the_weights_dialog(make_window, image_folder, qtbot):
    from scubasteve.weights import WeightsNotInstalled

    def factory():  # type: ignore[no-untyped-def]
        try:
            raise WeightsNotInstalled("mask_rcnn_coco")
        except WeightsNotInstalled as exc:
            raise ValueError("model 'mask_rcnn_coco' is missing") from exc

    window = make_window(image_folder)
    window.preannotate._factory = factory
    offered: list[str] = []
    window.preannotate.weights_missing.connect(offered.append)
    window.preannotate.run([window.annotator.entry.path])
    qtbot.waitUntil(lambda: bool(offered), timeout=5000)
    assert not window.preannotate.running
    assert window.documents.current.doc.annotations == []


def test_coco_export_leaves_out_unreviewed_preannotations(make_window, image_folder, qtbot):
    from pycocotools.coco import COCO

    window = make_window(image_folder)
    key(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: len(_pending(window)) == 1 and not window.preannotate.running, timeout=5000
    )
    messages: list[str] = []
    window.messages.said.connect(messages.append)
    out = image_folder / "coco.json"
    window.export_coco(out)
    qtbot.waitUntil(lambda: any(m.startswith("Exported") for m in messages), timeout=10000)
    assert any("1 pre-annotation(s) not yet reviewed left out" in m for m in messages)
    assert COCO(str(out)).getAnnIds() == []
    key(window, Qt.Key.Key_Y)
    messages.clear()
    window.export_coco(out)
    qtbot.waitUntil(lambda: any(m.startswith("Exported") for m in messages), timeout=10000)
    assert len(COCO(str(out)).getAnnIds()) == 1


def test_files_the_window_pre_annotated_carry_the_run_marker_so_the_command_line_resumes_them(
    make_window, image_folder, qtbot
):
    # Issue 23, item 1: the window ran its own loop and wrote no run marker, so a later
    # `scubasteve annotate` took its files for a person's and counted them as "kept".
    from helpers.gui_fakes import FakeSegmenter

    from scubasteve.core.project import Project
    from scubasteve.inference.preannotation import RUN_KEY, annotate_folder

    window = make_window(image_folder)
    key(
        window,
        Qt.Key.Key_R,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    qtbot.waitUntil(lambda: window.project.model.count(RowState.REVIEW) == 3, timeout=10000)
    qtbot.waitUntil(lambda: not window.preannotate.running, timeout=5000)
    window.documents.flush(5000)
    for name in ("img1.json", "img2.json", "img3.json"):  # img1 is open: saved by the window
        assert RUN_KEY in json.loads((image_folder / name).read_text()), name
    summary = annotate_folder(Project.open(image_folder), FakeSegmenter())
    assert sorted(p.name for p in summary.resumed) == ["img1.png", "img2.png", "img3.png"]
    assert summary.kept == [] and summary.written == []


def test_running_the_folder_again_replaces_unreviewed_pre_annotations_instead_of_doubling_them(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    progress: list[tuple[int, int]] = []
    window.preannotate.progress.connect(lambda d, t: progress.append((d, t)))
    images = [image_folder / f"img{i}.png" for i in (1, 2, 3)]
    for _ in range(2):
        progress.clear()
        window.preannotate.run(images)
        qtbot.waitUntil(
            lambda: not window.preannotate.running and progress[-1] == (3, 3), timeout=10000
        )
    shapes = json.loads((image_folder / "img2.json").read_text())["shapes"]
    assert [s["label"] for s in shapes] == ["person"]
    assert len(_pending(window)) == 1  # the open image too


def test_a_reopened_folder_lists_pre_annotated_images_to_review_and_next_to_do_finds_them(
    make_window, image_folder, qtbot
):
    # Issue 23, item 2: every image with a file was "done" until its document was opened, so
    # "next to do" skipped images whose shapes all await review.
    import numpy as np

    from scubasteve.core.annotation import Annotation, ImageDoc
    from scubasteve.core.geometry import Polygon
    from scubasteve.inference.preannotation import ImageResult, write_preannotation
    from scubasteve.io.labelme import write_labelme

    square = Polygon(np.array([[10.0, 10.0], [60.0, 10.0], [60.0, 60.0], [10.0, 60.0]]))
    img1, img2 = image_folder / "img1.png", image_folder / "img2.png"
    done = ImageDoc(img1, 320, 240, [Annotation("cat", polygons=(square,))], {"finished": True})
    write_labelme(done, img1.with_suffix(".json"))
    made = ImageResult([Annotation("person", polygons=(square,), source="pixellib")], (320, 240))
    write_preannotation(img2, img2.with_suffix(".json"), made)

    window = make_window(image_folder)
    model = window.project.model
    qtbot.waitUntil(lambda: model.state(1) == RowState.REVIEW, timeout=5000)
    assert [model.state(r) for r in range(3)] == [RowState.DONE, RowState.REVIEW, RowState.TODO]
    window.project.go(2)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img3.png", timeout=5000)
    key(window, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier)  # next to do: round to img2
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img2.png", timeout=5000)
