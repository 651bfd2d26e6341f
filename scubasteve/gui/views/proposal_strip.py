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

    def show_set(self, result: ProposalSet | None) -> None:
        for b in self._buttons:
            self._layout.removeWidget(b)
            b.deleteLater()
        self._buttons = []
        self._hint.setVisible(result is None or not result.views)
        if result is None:
            self._hint.setText("Drag a box around an object: ten proposals appear here.")
            return
        if not result.views:
            self._hint.setText("No proposal for this box.")
            return
        for i, view in enumerate(result.views):
            b = QToolButton(self)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIcon(QPixmap.fromImage(view.thumbnail))
            b.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
            b.setText(f"{key_of(i)}  ·  {view.proposal.score:.2f}")
            b.setToolTip(
                f"{view.proposal.source}, score {view.proposal.score:.3f} (key {key_of(i)})"
            )
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, i=i: self.picked.emit(i))
            self._layout.addWidget(b)
            self._buttons.append(b)

    def set_current(self, index: int) -> None:
        for i, b in enumerate(self._buttons):
            b.setChecked(i == index)

    def set_busy(self, busy: bool) -> None:
        if busy and not self._buttons:
            self._hint.setText("Proposing…")
            self._hint.show()
