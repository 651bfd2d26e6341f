"""Bad input in the window: unreadable images, broken annotation files, failing engines, huge folders."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from helpers.gui_fakes import FakeProposer
from helpers.gui_input import drag_box, key
from PySide6.QtCore import Qt

from scubasteve.core.geometry import Box
from scubasteve.gui.image_list import RowState
from scubasteve.gui.stall import StallMonitor

pytestmark = pytest.mark.gui


def test_unreadable_image_is_listed_and_skipped_with_a_message(make_window, image_folder, qtbot):
    (image_folder / "img2.png").write_bytes(b"this is not a png")
    window = make_window(image_folder)
    assert window.annotator.entry.path.name == "img1.png"
    messages: list[str] = []
    window.project.message.connect(messages.append)
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img3.png", timeout=5000)
    row = window.project.model.row_of(image_folder / "img2.png")
    assert window.project.model.state(row) == RowState.UNREADABLE
    assert "img2.png" in window.project.model.message(row)
    assert any("unreadable" in m and "img2.png" in m for m in messages)
    key(window, Qt.Key.Key_A)  # going back skips it too
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img1.png", timeout=5000)


def test_unparsable_annotation_file_is_shown_and_never_overwritten(
    make_window, image_folder, qtbot
):
    broken = image_folder / "img1.json"
    broken.write_text('{"shapes": [ {"label": "cat", ', encoding="utf-8")
    before = broken.read_bytes()
    window = make_window(image_folder)
    row = window.project.model.row_of(image_folder / "img1.png")
    # "problem" in the list before it is opened, and not counted as done
    qtbot.waitUntil(lambda: window.project.model.state(row) == RowState.PROBLEM, timeout=5000)
    assert "1 annotation file cannot be read" in window.images_panel.summary.text()
    assert "0 of" in window.images_panel.summary.text()
    window.project.go(0)  # the folder opens at the first image to do, which is img2
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img1.png", timeout=5000)
    assert window.banner.isVisible() and "img1.json" in window.banner.text()
    assert window.project.model.state(row) == RowState.PROBLEM
    window.annotator.set_label("cat")
    calls = len(window.proposer.calls)
    drag_box(window, Box(80, 60, 240, 180))
    # the box tool refuses, with the reason above the image (not proposals that cannot be saved)
    assert window.notice.isVisible() and "read-only" in window.notice.text.text()
    assert window.proposals.pending_id is None and window.proposals.result is None
    key(window, Qt.Key.Key_Return)  # nothing to accept: no request was made
    window.documents.flush()
    assert len(window.proposer.calls) == calls
    assert broken.read_bytes() == before
    assert window.documents.current.doc.annotations == []


def test_engine_that_raises_falls_back_to_classic_and_keeps_working(
    make_window, image_folder, qtbot
):
    import torch

    from scubasteve.inference.fallback import ClassicFallback

    good = FakeProposer()
    failing = FakeProposer(
        fail=torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    )

    def factory(name: str, device: str):  # type: ignore[no-untyped-def]
        # as the engine registry does: a learned engine comes wrapped in ClassicFallback
        return good if name == "classic" else ClassicFallback(failing, good)

    window = make_window(image_folder, good, factory)
    window.engine.start("deepmask", "cuda")
    qtbot.waitUntil(lambda: window.status.engine.text() == "engine: fake", timeout=5000)
    errors: list[str] = []
    window.engine.engine_error.connect(errors.append)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    assert failing.calls and good.calls, "the failing engine was tried, then classic answered"
    assert errors and "out of GPU memory" in errors[0] and "classic" in errors[0]
    assert window.engine.fell_back
    qtbot.waitUntil(
        lambda: (
            "classic engine serves alone" in window.status.engine.toolTip()
            or "classic engine serves alone" in window.status.engine.text()
        ),
        timeout=5000,
    )
    window.annotator.set_label("cat")
    key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.documents.current.doc.annotations) == 1, timeout=5000)


def test_engine_without_weights_falls_back_and_offers_weights(make_window, image_folder, qtbot):
    from scubasteve.weights import WeightsNotInstalled

    good = FakeProposer()

    def factory(name: str, device: str):  # type: ignore[no-untyped-def]
        if name != "classic":
            raise WeightsNotInstalled("deepmask", detail="no DeepMask weights in the models folder")
        return good

    window = make_window(image_folder, good, factory)
    errors: list[str] = []
    window.engine.engine_error.connect(errors.append)
    window.engine.start("deepmask", "auto")
    qtbot.waitUntil(
        lambda: window.engine.fell_back and window.status.weights.isVisible(), timeout=5000
    )
    assert "weights" in errors[0] and "classic" in errors[0]
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)


@pytest.mark.slow
def test_folder_of_20000_images_opens_and_the_list_stays_responsive(make_window, tmp_path, qtbot):
    folder = tmp_path / "many"
    folder.mkdir()
    from helpers.gui_fakes import make_images

    (seed,) = make_images(tmp_path / "seed", n=1, size=(64, 48))
    for i in range(20000):
        os.link(seed, folder / f"frame{i:05d}.png")
    monitor = StallMonitor()
    monitor.start()
    t0 = time.perf_counter()
    window = make_window(folder)
    opened = time.perf_counter() - t0
    panel = window.images_panel
    assert window.project.model.rowCount() == 20000
    for _ in range(5):
        panel.view.scrollToBottom()
        qtbot.wait(20)
        panel.view.scrollToTop()
        qtbot.wait(20)
    for _ in range(20):
        key(window, Qt.Key.Key_D)
        qtbot.wait(10)
    qtbot.waitUntil(lambda: window.project.row == 20, timeout=10000)
    monitor.stop()
    print(f"20,000 images: window showed the first image after {opened:.2f} s; "
          f"worst event-loop stall {monitor.worst_ms:.0f} ms")  # fmt: skip
    # 50 ms is the goal on a quiet machine; this shared CI machine gets generous headroom.
    assert monitor.worst_ms < 400
    shutil.rmtree(folder)


def test_engine_that_fails_on_the_gpu_is_tried_on_the_cpu_first(make_window, image_folder, qtbot):
    good = FakeProposer()
    tried: list[tuple[str, str]] = []

    def factory(name: str, device: str):  # type: ignore[no-untyped-def]
        tried.append((name, device))
        if device == "cuda":
            raise RuntimeError("CUDA driver version is insufficient")
        return good

    window = make_window(image_folder, good, factory)
    window.engine.start("deepmask", "cuda")
    qtbot.waitUntil(lambda: ("deepmask", "cpu") in tried, timeout=5000)
    qtbot.waitUntil(
        lambda: window.engine.name == "deepmask" and window.engine.device == "cpu", timeout=5000
    )
    assert ("classic", "cpu") not in tried[1:]


def test_only_the_missing_weights_error_counts_as_missing_weights():
    from scubasteve.gui.controllers.engine_host import is_weights_missing
    from scubasteve.weights import WeightsNotInstalled

    try:
        try:
            raise WeightsNotInstalled("mask_rcnn_coco")
        except WeightsNotInstalled as exc:
            raise ValueError("the segmenter could not start") from exc
    except ValueError as wrapped:
        assert is_weights_missing(wrapped), "found through the cause chain"
    # A device or library problem whose text happens to say "not installed" is not about weights:
    # the engine host retries such an engine on the CPU instead of offering the models dialog.
    assert not is_weights_missing(RuntimeError("libcudnn.so.9 is not installed"))
    assert not is_weights_missing(None)


def test_a_missing_weights_error_inside_propose_reaches_the_fallback(
    make_window, image_folder, qtbot
):
    # Issue 23, item 5: every ValueError from `propose` was taken for a bad box, and
    # `WeightsNotInstalled` (an InputError, so a ValueError) skipped the fallback.
    from scubasteve.inference.fallback import ClassicFallback
    from scubasteve.weights import WeightsNotInstalled

    good = FakeProposer()
    failing = FakeProposer(fail=WeightsNotInstalled("sam2_hiera_tiny"))

    def factory(name: str, device: str):  # type: ignore[no-untyped-def]
        return good if name == "classic" else ClassicFallback(failing, good)

    window = make_window(image_folder, good, factory)
    window.engine.start("sam2", "cpu")
    qtbot.waitUntil(lambda: window.status.engine.text() == "engine: fake", timeout=5000)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
    assert failing.calls and good.calls and window.engine.fell_back


def test_a_box_outside_the_image_is_refused_without_replacing_the_engine(
    make_window, image_folder, qtbot
):
    import numpy as np

    from scubasteve.gui.controllers.engine_host import ProposalRequest

    window = make_window(image_folder)
    failed: list[tuple[int, str]] = []
    window.engine.proposals_failed.connect(lambda i, m: failed.append((i, m)))
    errors: list[str] = []
    window.engine.engine_error.connect(errors.append)
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    window.engine.propose(ProposalRequest(7, "outside", image, Box(400, 300, 500, 380)))
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    assert failed[0][0] == 7 and "covers less than one pixel" in failed[0][1]
    assert errors == [] and not window.engine.fell_back


def test_out_of_memory_is_told_by_the_exception_type_not_its_text():
    import torch

    from scubasteve.inference.fallback import is_out_of_memory

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("a log line that says out of memory"))
    assert not is_out_of_memory(ValueError("OutOfMemory"))
