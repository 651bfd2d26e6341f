"""The GUI thread stays free: event-loop stalls while annotating, and painting a huge image."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers.gui_fakes import FakeProposer
from helpers.gui_input import drag_box, key
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from scubasteve.core.geometry import Box
from scubasteve.gui.stall import StallMonitor

pytestmark = pytest.mark.gui


def test_stall_monitor_sees_a_blocked_event_loop(qtbot):
    monitor = StallMonitor(interval_ms=5)
    monitor.start()
    qtbot.wait(50)
    time.sleep(0.12)  # the GUI thread is blocked: the next tick comes late
    qtbot.wait(50)
    monitor.stop()
    assert 90 <= monitor.worst_ms <= 400


def test_annotating_ten_objects_never_stalls_the_event_loop(make_window, image_folder, qtbot):
    window = make_window(image_folder, FakeProposer(delay=0.05))
    window.annotator.set_label("cat")
    monitor = StallMonitor()
    monitor.start()
    for i in range(10):
        x = 10 + 25 * i
        drag_box(window, Box(x, 20, x + 60, 200))
        qtbot.waitUntil(lambda: window.proposals.result is not None, timeout=5000)
        key(window, Qt.Key.Key_2)
        key(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.documents.current.doc.annotations) == 10, timeout=5000)
    qtbot.waitUntil(lambda: not window.documents.unsaved, timeout=5000)
    monitor.stop()
    print(f"worst stall while annotating: {monitor.worst_ms:.0f} ms")
    # The goal is < 50 ms on a quiet machine; the shared test machine gets headroom.
    assert monitor.worst_ms < 250


def _wheel(view, steps: int) -> None:  # type: ignore[no-untyped-def]
    pos = QPointF(view.viewport().width() / 2, view.viewport().height() / 2)
    event = QWheelEvent(
        pos, view.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(view.viewport(), event)


@pytest.mark.slow
def test_a_12000_by_9000_image_paints_fast_at_every_zoom(make_window, tmp_path, qtbot):
    folder = tmp_path / "big"
    folder.mkdir()
    h, w = 9000, 12000
    ramp = np.linspace(0, 255, w, dtype=np.float32)
    row = np.stack([ramp, ramp[::-1], np.full(w, 128, np.float32)], axis=1).astype(np.uint8)
    Image.fromarray(np.broadcast_to(row, (h, w, 3))).save(folder / "big.jpg", quality=80)
    window = make_window(folder, wait_image=False)
    qtbot.waitUntil(lambda: window.annotator.entry is not None, timeout=60000)
    view = window.view
    times = []
    for steps in (0, 3, 3, 3, 3, -2, -4, -4):
        if steps:
            _wheel(view, steps)
        t0 = time.perf_counter()
        view.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1000)
    print("paint ms per zoom step:", [round(t) for t in times])
    assert view.zoom > 0
    assert max(times) < 200
