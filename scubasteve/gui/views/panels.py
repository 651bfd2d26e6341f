"""Small view pieces: the status bar, the pre-annotation panel and the problem banner."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)


class StatusBar(QStatusBar):
    """Engine, device, last proposal latency and saved state, always visible on the right."""

    weights_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = QLabel("engine: starting…")
        self.device = QLabel("device: –")
        self.latency = QLabel("latency: –")
        self.saved = QLabel("saved")
        self.weights = QPushButton("Get model weights…")
        self.weights.setFlat(True)
        self.weights.hide()
        self.weights.clicked.connect(self.weights_clicked)
        for w in (self.weights, self.engine, self.device, self.latency, self.saved):
            self.addPermanentWidget(w)

    def set_engine(self, name: str, device: str, note: str = "") -> None:
        self.engine.setText(f"engine: {name}")
        self.engine.setToolTip(note)
        self.device.setText(f"device: {device}")

    def set_latency(self, seconds: float) -> None:
        self.latency.setText(f"latency: {seconds * 1000:.0f} ms")

    def set_saved(self, state: str) -> None:
        text = {"saved": "saved", "saving": "saving…"}.get(state, "NOT SAVED")
        self.saved.setText(text)
        self.saved.setToolTip(state)
        self.saved.setStyleSheet(
            "" if state in ("saved", "saving") else "color: #d22; font-weight: bold"
        )


PREANNOTATE_TEXT = "Mask R-CNN (PixelLib) labels whole images; review each result with Y / N."


class PreannotatePanel(QWidget):
    run_image = Signal()
    run_folder = Signal()
    cancel = Signal()
    accept = Signal()
    reject = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_button = QPushButton("This image")
        self.folder_button = QPushButton("Whole folder")
        self.skip_done = QCheckBox("Skip images that are done")
        self.skip_done.setChecked(True)
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.status = QLabel(PREANNOTATE_TEXT)
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(3 * self.status.fontMetrics().lineSpacing())
        accept, reject = QPushButton("Accept (Y)"), QPushButton("Reject (N)")
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        row1.addWidget(self.image_button)
        row1.addWidget(self.folder_button)
        row2.addWidget(accept)
        row2.addWidget(reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(row1)
        layout.addWidget(self.skip_done)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.status)
        layout.addLayout(row2)
        layout.addStretch(1)
        for button in (self.image_button, self.folder_button, self.cancel_button, accept, reject):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.image_button.clicked.connect(self.run_image)
        self.folder_button.clicked.connect(self.run_folder)
        self.cancel_button.clicked.connect(self.cancel)
        accept.clicked.connect(self.accept)
        reject.clicked.connect(self.reject)

    def set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.image_button.setEnabled(not running)
        self.folder_button.setEnabled(not running)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} images")


class ProblemBanner(QLabel):
    """A red line above the canvas while the image's annotation file cannot be read."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("background: #7a1f1f; color: white; padding: 6px")
        self.hide()

    def show_problem(self, problem: str | None) -> None:
        if problem:
            self.setText(
                f"This image is read-only: its annotation file cannot be read and will not be "
                f"overwritten.\n{problem}"
            )
            self.show()
        else:
            self.hide()


class NoticeBar(QWidget):
    """A dismissible message above the canvas; unlike a dialog it never takes the keyboard focus."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("background: #8a6d00; color: white")
        self.text = QLabel()
        self.text.setWordWrap(True)
        close = QPushButton("×")
        close.setFlat(True)
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(self.text, 1)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_text(self, text: str, seconds: float = 20.0) -> None:
        self.text.setText(text)
        self.show()
        self._timer.start(int(seconds * 1000))
