"""The label picker: a popup list, recent labels first, filtered as you type; Enter chooses.

Enter takes the highlighted label (an exact match comes first); Shift+Enter takes the typed text as
it is, a new label if there is no such label yet (typing "ball" must not only ever reach
"sports ball"). The picker only shows and reports; the recent-first order and filtering come from
`scubasteve.core.labels.RecentLabels`.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QCursor, QGuiApplication, QKeyEvent, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from scubasteve.core.geometry import Box
from scubasteve.core.labels import RecentLabels, normalise_label

NEW_PREFIX = "Add new label: "
#: Item data: the label's key ("Alt+1"), drawn at the right of the row.
KEY_ROLE = Qt.ItemDataRole.UserRole + 1


class _KeyHint(QStyledItemDelegate):
    """Draws a row as usual, plus its label key in grey at the right (the text stays the label)."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        super().paint(painter, option, index)
        keys = index.data(KEY_ROLE)
        if keys:
            painter.save()
            painter.setPen(QColor(140, 140, 140))
            rect = option.rect.adjusted(0, 0, -6, 0)  # type: ignore[attr-defined]
            painter.drawText(
                rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, keys
            )
            painter.restore()


class LabelPicker(QFrame):
    chosen = Signal(str)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Type to filter labels…")
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        self.list.setItemDelegate(_KeyHint(self.list))
        self.hint = QLabel("Enter chooses the highlighted label.")
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.list)
        layout.addWidget(self.hint)
        self.resize(260, 360)
        self._labels: RecentLabels | None = None
        self._keys: dict[str, str] = {}
        self.filter.textChanged.connect(self._refill)
        self.filter.installEventFilter(self)
        self.list.itemActivated.connect(self._activate)
        self.list.itemClicked.connect(self._activate)

    def open_with(
        self, labels: RecentLabels, at: QPoint | None = None, keys: dict[str, str] | None = None
    ) -> None:
        """Show the picker with its top-left at `at` (global), kept on the screen; `keys` maps a
        label to its key (Alt+1 …), shown beside it."""
        self._labels, self._keys = labels, keys or {}
        self.filter.clear()
        self._refill("")
        if at is not None:
            screen = QGuiApplication.screenAt(at) or QGuiApplication.primaryScreen()
            area = screen.availableGeometry()
            x = min(max(at.x(), area.left()), area.right() - self.width())
            y = min(max(at.y(), area.top()), area.bottom() - self.height())
            self.move(x, y)
        self.show()
        self.raise_()
        self.activateWindow()
        self.filter.setFocus()

    def _refill(self, text: str) -> None:
        self.list.clear()
        if self._labels is None:
            return
        matches = self._labels.filter(text)
        recent = set(self._labels.recent)
        for label in matches:
            item = QListWidgetItem(label)
            if label in self._keys:
                item.setData(KEY_ROLE, self._keys[label])
            if label in recent:
                item.setToolTip("recently used")
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.list.addItem(item)
        typed = normalise_label(text)
        if typed and typed not in matches:
            self.list.addItem(QListWidgetItem(NEW_PREFIX + typed))
            self.hint.setText(f"Enter: the highlighted label. Shift+Enter: “{typed}” as typed.")
        else:
            self.hint.setText("Enter chooses the highlighted label.")
        if self.list.count():
            self.list.setCurrentRow(0)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.filter and event.type() == QEvent.Type.KeyPress:
            key = event.key() if isinstance(event, QKeyEvent) else 0
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                row = self.list.currentRow() + (1 if key == Qt.Key.Key_Down else -1)
                self.list.setCurrentRow(max(0, min(row, self.list.count() - 1)))
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                shift = Qt.KeyboardModifier.ShiftModifier
                typed = normalise_label(self.filter.text())
                if isinstance(event, QKeyEvent) and event.modifiers() & shift and typed:
                    self.hide()
                    self.chosen.emit(typed)
                    return True
                item = self.list.currentItem()
                if item is not None:
                    self._activate(item)
                return True
            if key == Qt.Key.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(obj, event)

    def hideEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().hideEvent(event)
        self.closed.emit()

    def _activate(self, item: QListWidgetItem) -> None:
        text = item.text()
        if text.startswith(NEW_PREFIX):
            text = text[len(NEW_PREFIX) :]
        self.hide()
        if normalise_label(text):
            self.chosen.emit(normalise_label(text))


def picker_anchor(view: QGraphicsView, object_box: Box | None, fallback: QWidget) -> QPoint:
    """Where the label picker opens: beside `object_box` (scene coordinates, when relabelling) if it
    is in sight, else at the cursor if it is over the image, else under `fallback` (a button)."""
    viewport = view.viewport()
    if object_box is not None:
        point = view.mapFromScene(QPointF(object_box.x1, object_box.y0))
        if viewport.rect().contains(point):
            return viewport.mapToGlobal(point)
    cursor = QCursor.pos()
    if viewport.rect().contains(viewport.mapFromGlobal(cursor)):
        return cursor
    return fallback.mapToGlobal(fallback.rect().bottomLeft())
