"""An event-loop stall monitor: how late does a timer that should fire every few ms actually fire?

Whatever blocks the GUI thread (a slow slot, a long paint, work that belongs in a worker) delays the
timer; the lateness is how long the window could not react. Tests and benchmarks read `worst_ms`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from PySide6.QtCore import QObject, Qt, QTimer


class StallMonitor(QObject):
    """Measures event-loop lateness while running. `interval_ms` is the expected tick period."""

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._interval = interval_ms / 1000.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self._paused = 0
        self.stalls_ms: list[float] = []

    def start(self) -> None:
        self.stalls_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

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
