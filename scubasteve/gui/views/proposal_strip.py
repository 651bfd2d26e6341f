"""The strip of proposal thumbnails with their key numbers; the current one is highlighted.

The strip never changes the window's size: the thumbnails sit in a horizontal scroll area of fixed
height, shrink (down to `MIN_THUMB`) to fit the width there is, and scroll when even that is too
wide. A line on the left says how many proposals there are (fewer than ten happens) and, when there
are none, what the current tool expects. Thumbnails keep their slots while proposals stream in;
after the one sort at the end, those that moved have a blue frame and the count line says
"re-ranked" (`gui.controllers.proposal_order`).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from scubasteve.gui.render import THUMB_SIDE, ProposalSet

#: The smallest thumbnail side before the strip scrolls instead of shrinking them further.
MIN_THUMB = 56
BOX_HINT = "Drag a box around an object: proposals appear here."


def key_of(index: int) -> str:
    return str((index + 1) % 10)


def count_text(n: int) -> str:
    """What the count line says for `n` proposals (the keys that pick them)."""
    if n == 0:
        return "No proposal"
    if n == 1:
        return "1 proposal\nkey 1"
    return f"{n} proposals\nkeys 1–{key_of(n - 1)}"


class ProposalStrip(QWidget):
    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._buttons: list[QToolButton] = []
        self._shown = 0
        self._side = THUMB_SIDE
        self._idle_hint = BOX_HINT
        self._count = QLabel("")
        self._count.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._count.setMinimumWidth(90)
        self._count.hide()
        self._hint = QLabel(BOX_HINT)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        self._inner = QWidget()
        self._row = QHBoxLayout(self._inner)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(4)
        self._row.addStretch(1)
        self._scroll = QScrollArea(self)
        self._scroll.setWidget(self._inner)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._scroll.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(4)
        layout.addWidget(self._count)
        layout.addWidget(self._hint, 1)
        layout.addWidget(self._scroll, 1)
        # Fixed height, any width: whatever arrives, the window keeps its size.
        self.setFixedHeight(THUMB_SIDE + 46)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setStyleSheet(
            "QToolButton { border: 2px solid transparent; padding: 1px; }"
            "QToolButton:checked { border: 3px solid #ff8c00; background: #4a3000; color: white; }"
            'QToolButton[moved="true"] { border: 2px dashed #3aa0ff; }'
            'QToolButton[moved="true"]:checked { border: 3px dashed #ff8c00; }'
        )

    def minimumSizeHint(self) -> QSize:
        return QSize(120, THUMB_SIDE + 46)

    def sizeHint(self) -> QSize:
        return QSize(400, THUMB_SIDE + 46)

    def _button(self, i: int) -> QToolButton:
        # Buttons are made once and reused: a proposal set arrives up to ten times (progressively).
        while len(self._buttons) <= i:
            n = len(self._buttons)
            b = QToolButton(self._inner)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIconSize(QSize(self._side, self._side))
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, n=n: self.picked.emit(n))
            self._row.insertWidget(n, b)
            self._buttons.append(b)
        return self._buttons[i]

    def set_idle_hint(self, text: str) -> None:
        """What the strip says while there are no proposals (depends on the tool)."""
        self._idle_hint = text
        if not self._shown:
            self._hint.setText(text)

    def show_set(self, result: ProposalSet | None, moved: list[int] | None = None) -> None:
        """Show `result`; `moved[i]` >= 0: thumbnail i was in that slot before the final sort."""
        views = result.views if result is not None else []
        self._hint.setVisible(not views)
        self._scroll.setVisible(bool(views))
        self._count.setVisible(result is not None)
        if result is None:
            self._hint.setText(self._idle_hint)
        elif not views:
            self._hint.setText("No proposal for this box: try a tighter box, or P for a polygon.")
        more = " …" if result is not None and result.partial else ""
        if moved:
            more = "\nre-ranked"
        self._count.setText(count_text(len(views)) + more)
        for i, view in enumerate(views):
            was = moved[i] if moved is not None and i < len(moved) else -1
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
                + (f"; was key {key_of(was)} before the sort" if was >= 0 else "")
            )
            if bool(b.property("moved")) != (was >= 0):
                b.setProperty("moved", was >= 0)
                b.style().unpolish(b)
                b.style().polish(b)
            b.show()
        for b in self._buttons[len(views) :]:
            b.hide()
        self._shown = len(views)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        """Thumbnails as large as ten of them fit in the width (not below MIN_THUMB: then scroll)."""
        width = self._scroll.viewport().width() if self._scroll.isVisible() else self.width() - 100
        side = max(MIN_THUMB, min(THUMB_SIDE, (width - 10 * 12) // 10))
        if side != self._side:
            self._side = side
            for b in self._buttons:
                b.setIconSize(QSize(side, side))

    def set_current(self, index: int) -> None:
        for i, b in enumerate(self._buttons):
            b.setChecked(i == index)
        if 0 <= index < len(self._buttons):
            self._scroll.ensureWidgetVisible(self._buttons[index])

    @property
    def shown(self) -> int:
        """How many proposal thumbnails are visible."""
        return self._shown

    def set_busy(self, busy: bool) -> None:
        if busy and not self._shown:
            self._hint.setText("Proposing…")
            self._hint.show()
