"""Install or import model weights: download in the background with progress and cancel, or import a file.

Uses `scubasteve.weights` (`list_models`, `download`, `import_file`); the dialog only shows
state and starts work, as a `Job` on its own one-thread pool (`scubasteve.gui.workers`): results and
progress arrive on the GUI thread, and Cancel sets the job's `CancelToken`. Nothing is downloaded
unless the user asks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.progress import Progress
from scubasteve.gui.workers import Job, make_pool, submit_job


def _download(name: str, *, progress: Progress, cancel: CancelToken) -> str:
    """Download `name` (on a worker); `progress(done, total)` reaches the dialog on the GUI thread."""
    from scubasteve import weights

    return str(weights.download(name, progress=progress, cancel=cancel))


def _import(name: str, source: Path, *, progress: Progress, cancel: CancelToken) -> str:
    """Check and install a file the user has (on a worker); quick, so neither reported nor cancelled."""
    from scubasteve import weights

    return str(weights.import_file(name, source))


def _describe(status: Any) -> str:
    info = getattr(status, "info", None)
    name = getattr(status, "name", str(status))
    parts = [name, "installed" if getattr(status, "installed", False) else "not installed"]
    if info is not None:
        size = getattr(info, "display_size", None)
        if isinstance(size, int) and size > 0:
            parts.append(f"{size / 1e6:.0f} MB")
        if getattr(info, "description", ""):
            parts.append(info.description)
    if getattr(status, "problem", None):
        parts.append(f"problem: {status.problem}")
    # The name on its own line, whole; the details wrap below it (names were cut at 520 px).
    return parts[0] + "\n" + " — ".join(parts[1:])


class WeightsDialog(QDialog):
    installed = Signal(str)

    def __init__(self, reason: str = "", parent: QWidget | None = None, select: str = "") -> None:
        """`reason`: why the dialog opened; `select`: the model to select (the one recommended)."""
        super().__init__(parent)
        self.setWindowTitle("Model weights")
        self.info = QLabel(
            (reason + "\n\n" if reason else "")
            + "The classic engine works without weights. Download a model (needs the internet) "
            "or import a weights file you already have."
            + (f" Recommended: {select}, selected below." if select else "")
        )
        self.info.setWordWrap(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.download_button = QPushButton("Download")
        self.import_button = QPushButton("Import file…")
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.hide()
        close = QPushButton("Close")
        buttons = QHBoxLayout()
        for b in (self.download_button, self.import_button, self.cancel_button, close):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        for w in (self.info, self.list, self.progress, self.status):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.download_button.clicked.connect(self._download)
        self.import_button.clicked.connect(self._import)
        self.cancel_button.clicked.connect(self._cancel)
        close.clicked.connect(self.reject)
        self._pool = make_pool("long")
        self._job: Job | None = None
        self.refresh()
        if select:
            self.select(select)
        self.resize(760, 440)

    def refresh(self) -> None:
        self.list.clear()
        try:
            from scubasteve import weights

            models = weights.list_models()
        except Exception as exc:
            self.status.setText(f"The weights manager is not available: {exc}")
            self.download_button.setEnabled(False)
            self.import_button.setEnabled(False)
            return
        for model in models:
            item = QListWidgetItem(_describe(model))
            item.setToolTip(item.text())
            item.setData(256, getattr(model, "name", str(model)))
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def select(self, name: str) -> bool:
        """Select model `name` in the list; False when it is not listed."""
        for row in range(self.list.count()):
            if self.list.item(row).data(256) == name:
                self.list.setCurrentRow(row)
                return True
        return False

    def _selected(self) -> str | None:
        item = self.list.currentItem()
        return item.data(256) if item else None

    def _download(self) -> None:
        name = self._selected()
        if name:
            self._start(_download, (name,), f"Downloading {name}…")

    def _start(self, work: Callable[..., str], args: tuple[Any, ...], text: str) -> None:
        """Run `work(*args, progress=, cancel=)` in the background (one job at a time)."""
        if self._job is not None:
            return
        self._job = submit_job(
            self._pool,
            work,
            *args,
            on_done=self._on_done,
            on_error=self._on_failed,
            on_progress=self._on_progress,
        )
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.download_button.setEnabled(False)
        self.import_button.setEnabled(False)
        self.status.setText(text)

    def _on_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.status.setText(f"{done / 1e6:.1f} of {total / 1e6:.1f} MB")

    def _on_done(self, path: str) -> None:
        self._ended()
        self.status.setText(f"Installed: {path}")
        self.installed.emit(path)
        self.refresh()

    def _on_failed(self, exc: BaseException) -> None:
        self._ended()
        self.status.setText(f"Failed: {'cancelled' if isinstance(exc, Cancelled) else exc}")

    def _ended(self) -> None:
        self._job = None
        self.progress.hide()
        self.cancel_button.hide()
        self.download_button.setEnabled(True)
        self.import_button.setEnabled(True)

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _import(self) -> None:
        name = self._selected()
        if not name:
            return
        file, _ = QFileDialog.getOpenFileName(self, f"Weights file for {name}")
        if file:
            self._start(_import, (name, Path(file)), f"Checking and installing {file}…")

    def reject(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._pool.waitForDone(5000)
        super().reject()
