"""An event-loop stall monitor: how late does a timer that should fire every few ms actually fire?

Whatever blocks the GUI thread (a slow slot, a long paint, work that belongs in a worker) delays the
timer; the lateness is how long the window could not react. Tests and benchmarks read `worst_ms`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
from collections.abc import Iterator

from PySide6.QtCore import QObject, Qt, QTimer


class StallMonitor(QObject):
    """Measures event-loop lateness while running. `interval_ms` is the expected tick period."""

    def __init__(
        self, interval_ms: int = 5, watch_ms: float | None = None, parent: QObject | None = None
    ) -> None:
        """`watch_ms`: also record where the GUI thread's Python code is when it is stuck longer."""
        super().__init__(parent)
        self._interval = interval_ms / 1000.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self._paused = 0
        self.stalls_ms: list[float] = []
        self.stacks: list[str] = []  # Python stacks of the GUI thread during long stalls
        self._watch = watch_ms / 1000.0 if watch_ms else None
        self._watcher: threading.Thread | None = None
        self._running = False

    def start(self) -> None:
        self.stalls_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()
        self._running = True
        if self._watch is not None and self._watcher is None:
            gui_thread = threading.get_ident()
            self._watcher = threading.Thread(
                target=self._watch_loop, args=(gui_thread,), daemon=True, name="stall-watch"
            )
            self._watcher.start()

    def stop(self) -> None:
        self._timer.stop()
        self._running = False

    def _watch_loop(self, gui_thread: int) -> None:
        reported = 0.0
        while self._running:
            time.sleep(0.02)
            last = self._last
            if self._paused or last == reported or self._watch is None:
                continue
            if time.perf_counter() - last > self._watch:
                frame = sys._current_frames().get(gui_thread)
                stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
                self.stacks.append(stack)
                reported = last

    def reset(self) -> None:
        self.stalls_ms.clear()
        self._last = time.perf_counter()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Do not count the time inside (a benchmark's own work on the GUI thread)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            self._last = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        late = (now - self._last - self._interval) * 1000.0
        self._last = now
        if late > 0 and not self._paused:
            self.stalls_ms.append(late)

    @property
    def worst_ms(self) -> float:
        return max(self.stalls_ms, default=0.0)

    def count_over(self, ms: float) -> int:
        return sum(1 for s in self.stalls_ms if s > ms)
