"""`scubasteve` with no subcommand: the desktop window.

Only Qt and the light core modules load before the window is shown; the engine (and torch with it)
is created on its own thread afterwards, so the window appears within about a second.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: Called with the window once it is first shown (the start-up benchmark sets it).
on_first_shown: Callable[[object], None] | None = None

#: How long a busy engine thread may keep the GIL before the GUI thread gets it (Python's default is
#: 5 ms). Every Qt callback into Python needs the GIL, so with 5 ms one repaint could wait tens of
#: milliseconds while an engine computes; 1 ms roughly halved the worst stalls measured (ADR 0506).
GIL_SWITCH_INTERVAL = 0.001


def tune_interpreter() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)


def run_app(folder: Path | None = None, exit_at_once: bool = False) -> int:
    """Open the main window (on `folder` if given) and run until it is closed.

    `exit_at_once` (the `scubasteve` command): once the window closed with everything saved, the
    process ends without waiting for engine threads or the interpreter's teardown of PyTorch and
    TensorFlow (ADR 0507); in-process callers (self-test, benchmarks) keep the default.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the CLI sets "0" with -v
    from PySide6.QtWidgets import QApplication

    from scubasteve.core.settings import load_settings
    from scubasteve.gui.main_window import MainWindow
    from scubasteve.gui.qtcheck import missing_display, undo_cv2_plugin_redirect

    undo_cv2_plugin_redirect()  # importing cv2 (above) pointed Qt at cv2's own plugins (ADR 0507)
    no_display = None if QApplication.instance() else missing_display()
    if no_display:
        print(f"scubasteve: {no_display}", file=sys.stderr)
        return 1

    tune_interpreter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Scuba Steve")
    app.setOrganizationName("scubasteve")
    problems: list[str] = []
    settings = load_settings(problems=problems)
    window = MainWindow(settings)
    start_folder = Path(folder).expanduser() if folder else None

    def shown() -> None:
        from scubasteve.gui.qtcheck import reference_leak

        leak = reference_leak()
        if leak:
            log.error("%s", leak)
            window.show_error(leak)
        window.start(start_folder)
        for problem in problems:
            window.show_message(problem)
        if on_first_shown is not None:
            on_first_shown(window)

    window.first_shown.connect(shown)
    previous_hook = sys.excepthook
    sys.excepthook = _report_to(window)
    window.show()
    try:
        status = int(app.exec())
    finally:
        sys.excepthook = previous_hook
    if exit_at_once and window.closed_cleanly:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(status)
    return status


def check_display() -> int:
    """Open and close a small window on the display Qt would use (`--check-display`): 0 if it works.

    A platform plugin that cannot load aborts the process, so the self-test runs this in a child.
    """
    import cv2  # noqa: F401  (imported as the window imports it, to undo its redirect the same way)
    from PySide6.QtWidgets import QApplication, QLabel

    from scubasteve.gui.qtcheck import undo_cv2_plugin_redirect

    undo_cv2_plugin_redirect()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    label = QLabel("Scuba Steve display check")
    label.show()
    app.processEvents()
    print(f"platform {app.platformName()}: a window opened and closed")
    label.close()
    return 0


def _report_to(window):  # type: ignore[no-untyped-def]
    """An excepthook for errors escaping Qt callbacks: log the traceback, tell the user in a notice.

    The annotations are saved after every change, so the user can keep working or restart.
    """

    def hook(kind, value, tb) -> None:  # type: ignore[no-untyped-def]
        log.error("unexpected error", exc_info=(kind, value, tb))
        try:
            window.show_error(
                f"Unexpected error: {value}. Your annotations are saved; details in the log."
            )
        except Exception:  # the window itself may be what failed
            sys.__excepthook__(kind, value, tb)

    return hook
