"""The strip of proposal thumbnails with their key numbers; the current one is highlighted."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from scubasteve.gui.render import THUMB_SIDE, ProposalSet


def key_of(index: int) -> str:
    return str((index + 1) % 10)


class ProposalStrip(QWidget):
    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._buttons: list[QToolButton] = []
        self._shown = 0
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(4, 2, 4, 2)
        self._layout.setSpacing(4)
        self._hint = QLabel("Drag a box around an object: ten proposals appear here.")
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._hint)
        self.setMinimumHeight(THUMB_SIDE + 30)
        self.setStyleSheet(
            "QToolButton { border: 2px solid transparent; padding: 1px; }"
            "QToolButton:checked { border: 3px solid #ff8c00; background: #4a3000; color: white; }"
        )

    def _button(self, i: int) -> QToolButton:
        # Buttons are made once and reused: a proposal set arrives up to ten times (progressively).
        while len(self._buttons) <= i:
            n = len(self._buttons)
            b = QToolButton(self)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, n=n: self.picked.emit(n))
            self._layout.addWidget(b)
            self._buttons.append(b)
        return self._buttons[i]

    def show_set(self, result: ProposalSet | None) -> None:
        views = result.views if result is not None else []
        self._hint.setVisible(not views)
        if result is None:
            self._hint.setText("Drag a box around an object: ten proposals appear here.")
        elif not views:
            self._hint.setText("No proposal for this box.")
        for i, view in enumerate(views):
            b = self._button(i)
            b.setIcon(QPixmap.fromImage(view.thumbnail))
            quality = view.proposal.quality
            b.setText(f"{key_of(i)}  ·  IoU≈{quality:.2f}" if quality is not None else key_of(i))
            b.setToolTip(
                f"{view.proposal.source}"
                + (
                    f", estimated IoU with the object {quality:.2f}"
                    if quality is not None
                    else ", no quality estimate from this engine"
                )
                + f" (key {key_of(i)})"
            )
            b.show()
        for b in self._buttons[len(views) :]:
            b.hide()
        self._shown = len(views)

    def set_current(self, index: int) -> None:
        for i, b in enumerate(self._buttons):
            b.setChecked(i == index)

    @property
    def shown(self) -> int:
        """How many proposal thumbnails are visible."""
        return self._shown

    def set_busy(self, busy: bool) -> None:
        if busy and not self._shown:
            self._hint.setText("Proposing…")
            self._hint.show()
