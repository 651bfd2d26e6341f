"""The image list as a QAbstractListModel: 20,000 rows cost one list of paths and one of states.

Rows are never widgets; the view asks only for the visible rows, so opening a huge folder and
scrolling stay instant. State changes update one row.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from scubasteve.core.annotation import ImageState

Index = QModelIndex | QPersistentModelIndex


class RowState(IntEnum):
    """A row's state: the image's `core.annotation.ImageState`, or why it cannot be worked on."""

    TODO = 0
    DONE = 1
    REVIEW = 2  # has pre-annotations awaiting review
    UNREADABLE = 3  # the image cannot be decoded: skipped
    PROBLEM = 4  # the annotation file cannot be read: read-only
    STARTED = 5  # has objects, not yet marked finished

    @classmethod
    def of(cls, state: ImageState) -> RowState:
        """The row state of an image in `state` (`core.annotation.doc_state`)."""
        return _OF_IMAGE_STATE[state]

    @property
    def text(self) -> str:
        """What the user reads for this state ("in progress", "unreadable image")."""
        return _STATE_TEXT[self]


_OF_IMAGE_STATE = {
    ImageState.TODO: RowState.TODO,
    ImageState.STARTED: RowState.STARTED,
    ImageState.REVIEW: RowState.REVIEW,
    ImageState.DONE: RowState.DONE,
}

#: The rows "next to do" (Shift+D) visits: the images that still need the user.
NEEDS_USER = tuple(row for image, row in _OF_IMAGE_STATE.items() if image.needs_user)

_STATE_TEXT = {
    **{row: image.value for image, row in _OF_IMAGE_STATE.items()},
    RowState.UNREADABLE: "unreadable image",
    RowState.PROBLEM: "annotation file cannot be read",
}
#: The image list's filters, in the order the list offers them: (name, the row states shown).
FILTERS: tuple[tuple[str, tuple[RowState, ...]], ...] = (
    ("All", tuple(RowState)),
    ("To do", (RowState.TODO,)),
    ("In progress", (RowState.STARTED,)),
    ("To review", (RowState.REVIEW,)),
    ("Done", (RowState.DONE,)),
    ("Problem", (RowState.UNREADABLE, RowState.PROBLEM)),
)
#: The item data role that holds a row's `RowState` (what the filter reads).
STATE_ROLE = Qt.ItemDataRole.UserRole + 1

_STATE_COLOR = {
    RowState.TODO: QColor(150, 150, 150),
    RowState.DONE: QColor(40, 180, 70),
    RowState.REVIEW: QColor(240, 170, 0),
    RowState.UNREADABLE: QColor(210, 40, 40),
    RowState.PROBLEM: QColor(200, 60, 200),
    RowState.STARTED: QColor(60, 140, 230),
}


def _dot(color: QColor) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(color)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pix)


class ImageListModel(QAbstractListModel):
    counts_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[Path] = []
        self._rows: dict[str, int] = {}
        self._names: list[str] = []
        self._states: list[RowState] = []
        self._messages: dict[int, str] = {}
        self._icons: dict[RowState, QIcon] = {}
        self._counts = dict.fromkeys(RowState, 0)

    def reset(self, paths: list[Path], names: list[str], states: list[RowState]) -> None:
        self.beginResetModel()
        self._paths, self._names, self._states = paths, names, states
        self._rows = {str(p): i for i, p in enumerate(paths)}
        self._messages = {}
        self._counts = dict.fromkeys(RowState, 0)
        for s in states:
            self._counts[s] += 1
        self.endResetModel()
        self.counts_changed.emit()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = index.row()
        if not index.isValid() or not 0 <= row < len(self._paths):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._names[row]
        if role == Qt.ItemDataRole.DecorationRole:
            state = self._states[row]
            icon = self._icons.get(state)
            if icon is None:
                icon = self._icons[state] = _dot(_STATE_COLOR[state])
            return icon
        if role == STATE_ROLE:
            return int(self._states[row])
        if role == Qt.ItemDataRole.ToolTipRole:
            text = f"{self._names[row]}: {_STATE_TEXT[self._states[row]]}"
            message = self._messages.get(row)
            return f"{text}\n{message}" if message else text
        return None

    # -- queries and updates ------------------------------------------------------------------------

    def path(self, row: int) -> Path:
        return self._paths[row]

    def state(self, row: int) -> RowState:
        return self._states[row]

    def message(self, row: int) -> str:
        return self._messages.get(row, "")

    def row_of(self, path: Path) -> int:
        return self._rows.get(str(path), -1)

    def set_state(self, row: int, state: RowState, message: str = "") -> None:
        old = self._states[row]
        if message:
            self._messages[row] = message
        else:
            self._messages.pop(row, None)
        if old == state:
            return
        self._states[row] = state
        self._counts[old] -= 1
        self._counts[state] += 1
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole, STATE_ROLE])
        self.counts_changed.emit()

    def count(self, state: RowState) -> int:
        return self._counts[state]

    def summary(self) -> str:
        n = len(self._paths)
        parts = [f"{self._counts[RowState.DONE]} of {n} done"]
        for state in (RowState.STARTED, RowState.REVIEW, RowState.UNREADABLE, RowState.PROBLEM):
            if self._counts[state]:
                parts.append(f"{self._counts[state]} {_STATE_TEXT[state]}")
        return ", ".join(parts)

    def find(self, start: int, step: int, wanted: tuple[RowState, ...]) -> int:
        """The next row from `start` (exclusive) in direction `step` whose state is wanted; -1 if none."""
        row = start + step
        while 0 <= row < len(self._states):
            if self._states[row] in wanted:
                return row
            row += step
        return -1

    def count_of(self, states: tuple[RowState, ...]) -> int:
        return sum(self._counts[s] for s in states)


class StateFilter(QSortFilterProxyModel):
    """The rows of an `ImageListModel` whose state is one of a filter's; follows state changes."""

    def __init__(self, model: ImageListModel) -> None:
        super().__init__()
        self.setSourceModel(model)
        self.setFilterRole(STATE_ROLE)  # a row whose state changes is filtered again
        self.setDynamicSortFilter(True)
        self._states: frozenset[int] = frozenset(int(s) for s in RowState)

    def set_states(self, states: tuple[RowState, ...]) -> None:
        self.beginFilterChange()
        self._states = frozenset(int(s) for s in states)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, ImageListModel)
        return int(model.state(source_row)) in self._states
