"""Small view pieces: the status bar, the pre-annotation panel and the problem banner."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStatusBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


def breakable(text: str, longest: int = 24) -> str:
    """`text` with zero-width spaces after path separators and the like in words longer than
    `longest`, so that a word-wrapped label breaks a long path instead of growing (and widening its
    dock or the window). Short words stay as they are."""

    def split(word: re.Match[str]) -> str:
        return re.sub(r"([/\\_.:-])(?=\S)", "\\1\u200b", word.group(0))

    return re.sub(r"\S{" + str(longest + 1) + ",}", split, text)


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
        self._permanent = (self.weights, self.engine, self.device, self.latency, self.saved)
        for w in self._permanent:
            self.addPermanentWidget(w)

    def set_engine(self, name: str, device: str, note: str = "", missing: str = "") -> None:
        """The engine serving now; `missing`: why the better engines cannot (then the weights
        button shows, with that reason as its tooltip)."""
        self.engine.setText(f"engine: {name}")
        self.engine.setToolTip(note)
        self.device.setText(f"device: {device}")
        self.weights.setToolTip(missing)
        self.weights.setVisible(bool(missing))

    def fits(self, text: str) -> bool:
        """Whether `text` fits in the message area beside the permanent widgets (else it is cut)."""
        taken = sum(w.width() + 8 for w in self._permanent if w.isVisible())
        room = self.width() - taken - 24
        return "\n" not in text and self.fontMetrics().horizontalAdvance(text) <= room

    def show_learning(self, done: int, total: int) -> None:
        self.showMessage(f"Learning from this folder: epoch {done} of {total} done", 0)

    def set_latency(self, seconds: float) -> None:
        self.latency.setText(f"latency: {seconds * 1000:.0f} ms")

    def set_saved(self, state: str) -> None:
        text = {"saved": "saved", "saving": "saving…"}.get(state, "NOT SAVED")
        self.saved.setText(text)
        self.saved.setToolTip(state)
        self.saved.setStyleSheet(
            "" if state in ("saved", "saving") else "color: #d22; font-weight: bold"
        )


class LabelButton(QToolButton):
    """The toolbar's current label. Its width is fixed, so the tool buttons after it stay where the
    hand expects them whatever the label's length; a long label is elided (whole in the tooltip)."""

    WIDTH = 190

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedWidth(self.WIDTH)
        self.show_label("–")

    def show_label(self, label: str) -> None:
        tail = "  (L)"
        room = self.WIDTH - 16 - self.fontMetrics().horizontalAdvance(tail)
        shown = self.fontMetrics().elidedText(f"Label: {label}", Qt.TextElideMode.ElideRight, room)
        self.setText(shown + tail)
        self.setToolTip(f"Label for the next objects: {label} (L chooses another)")


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
        self._images = (0, 0)  # images done, images in the run
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.status = QLabel(PREANNOTATE_TEXT)
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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

    def set_status(self, text: str) -> None:
        """The run's latest news, whole: long paths wrap instead of widening the dock."""
        self.status.setText(breakable(text))
        self.status.setToolTip(text)

    def set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.image_button.setEnabled(not running)
        self.folder_button.setEnabled(not running)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} images")
        self._images = (done, total)

    def set_view_progress(self, done: int, total: int) -> None:
        """A large image's tiles: the bar counts them until the image is done."""
        images_done, images = self._images
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"image {images_done + 1} / {images}: tile {done} / {total}")


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
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.image_key: str | None = None  # the image the notice is about (None: not one image)
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

    def show_text(self, text: str, seconds: float = 20.0, image_key: str | None = None) -> None:
        self.text.setText(breakable(text))
        self.text.setToolTip(text)
        self.image_key = image_key
        self.show()
        self._timer.start(int(seconds * 1000))

    def forget_image(self, key: str | None) -> None:
        """Hide the notice if it is about another image than `key`."""
        if self.image_key is not None and self.image_key != key:
            self.hide()
            self.image_key = None
