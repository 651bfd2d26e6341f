"""The real window for benchmarks: opened on a folder (offscreen unless a display is chosen),
waited on without blocking its event loop, and closed after; used by `bench annotator` and
`bench carry`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WAIT_S = 120.0


def wait_until(app: Any, condition: Any, timeout: float = WAIT_S) -> bool:
    """Run the event loop until `condition()` holds; False after `timeout` seconds."""
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def quiet_offscreen_warnings() -> None:
    """Drop the offscreen platform's "does not support" chatter; keep every other Qt message."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(mode, context, message) -> None:  # type: ignore[no-untyped-def]
        if "This plugin does not support" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


class WindowDidNotStart(RuntimeError):
    """The benchmark window opened no image, or no engine started."""


@contextlib.contextmanager
def bench_window(
    folder: Path, args: argparse.Namespace, proposer_factory: Any = None
) -> Iterator[tuple[Any, Any, Any]]:
    """The real window (offscreen unless a display is chosen) on `folder`, with `args.engine`;
    yields (application, window, the ready engine's `EngineInfo`) and closes the window after."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from PySide6.QtWidgets import QApplication

    from scubasteve.core.settings import Settings
    from scubasteve.gui.app import tune_interpreter
    from scubasteve.gui.main_window import MainWindow

    tune_interpreter()  # as the app does
    app = QApplication.instance() or QApplication(sys.argv[:1])
    quiet_offscreen_warnings()
    settings = Settings(engine=args.engine, device=getattr(args, "device", "auto") or "auto")
    window = MainWindow(settings, proposer_factory=proposer_factory, save_settings_on_close=False)
    window.resize(1400, 900)
    window.show()
    engine: list[Any] = []
    window.engine.engine_ready.connect(engine.append)
    window.start(folder)
    if not wait_until(app, lambda: bool(engine) and window.annotator.entry is not None):
        window.close()
        raise WindowDidNotStart("the window did not open the images or no engine started")
    try:
        yield app, window, engine[0]
    finally:
        window.close()


def show_image(app: Any, window: Any, row: int, path: Path) -> bool:
    """Go to `row` of the image list and wait until `path` is shown."""
    window.project.go(row)
    return wait_until(
        app, lambda: window.annotator.entry is not None and window.annotator.entry.path == path
    )
