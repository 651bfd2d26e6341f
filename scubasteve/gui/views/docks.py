"""Dock widgets: image list, annotations of the current image, and time per object.

Views only: they show what controllers give them and emit what the user asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from scubasteve.core.annotation import Annotation
from scubasteve.core.shape_ops import point_count
from scubasteve.gui.image_list import FILTERS, ImageListModel, StateFilter
from scubasteve.gui.stats import LabelTiming


class ImageListPanel(QWidget):
    """The folder's images with their state; a filter above the list shows one state's images
    (with each filter's count), the button below goes to the next image that needs the user."""

    row_activated = Signal(int)
    next_todo = Signal()

    def __init__(self, model: ImageListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.filtered = StateFilter(model)
        self.view = QListView(self)
        self.view.setModel(model)  # "All" shows the model itself: no filter cost on 20,000 rows
        self.view.setUniformItemSizes(
            True
        )  # constant row height: 20,000 rows scroll without layout
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(200)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.filter = QComboBox(self)
        self.filter.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.filter.addItems([name for name, _states in FILTERS])
        self.filter.currentIndexChanged.connect(self._filter_chosen)
        self.summary = QLabel("No folder open")
        self.summary.setWordWrap(True)  # "3 of 10 done, 1 unreadable image, ..." needs two lines
        # Two lines always: the list below must not jump when a count makes it wrap.
        self.summary.setFixedHeight(2 * self.summary.fontMetrics().lineSpacing() + 4)
        todo = QPushButton("Next to do")
        todo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        todo.clicked.connect(self.next_todo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter)
        layout.addWidget(self.summary)
        layout.addWidget(self.view)
        layout.addWidget(todo)
        self._current = -1
        self.view.clicked.connect(self._activated)
        self.view.activated.connect(self._activated)
        model.counts_changed.connect(self._update_summary)
        model.modelReset.connect(self._update_summary)

    def _update_summary(self) -> None:
        self.summary.setText(self.model.summary())
        for i, (name, states) in enumerate(FILTERS):
            self.filter.setItemText(i, f"{name} ({self.model.count_of(states)})")

    def _filter_chosen(self, index: int) -> None:
        _name, states = FILTERS[index]
        if index == 0:
            self.view.setModel(self.model)
        else:
            self.filtered.set_states(states)
            self.view.setModel(self.filtered)
        self.set_current(self._current)

    def _activated(self, index: QModelIndex) -> None:
        if index.model() is self.filtered:
            index = self.filtered.mapToSource(index)
        self.row_activated.emit(index.row())

    def set_current(self, row: int) -> None:
        self._current = row
        index = self.model.index(row) if row >= 0 else QModelIndex()
        if self.view.model() is self.filtered:
            index = self.filtered.mapFromSource(index)
        self.view.setCurrentIndex(index)
        if index.isValid():
            self.view.scrollTo(index)


class AnnotationsPanel(QWidget):
    """The current image's annotations; the check box shows or hides each one. Ctrl+click selects
    several (for merge and subtract); the line below says the selected shape's point count."""

    selection_made = Signal(list)  # annotation ids, the first-selected (current row) first
    visibility_changed = Signal(str, bool)
    relabel_requested = Signal()
    delete_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.header = QLabel("")
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        buttons = QHBoxLayout()
        for text, signal in (
            ("Relabel", self.relabel_requested),
            ("Delete", self.delete_requested),
        ):
            b = QPushButton(text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(signal)
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.header)
        layout.addWidget(self.list)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)
        self._updating = False
        self.list.itemSelectionChanged.connect(self._selection_changed)
        self.list.itemChanged.connect(self._item_changed)

    def show_annotations(
        self, annotations: Sequence[Annotation], hidden: set[str], selection: Sequence[str]
    ) -> None:
        self._updating = True
        try:
            self.list.clear()
            review = 0
            numbers: dict[str, int] = {}
            detail = ""
            for ann in annotations:
                pending = ann.needs_review
                review += pending
                extra = " — to review (Y/N)" if pending else ""
                extra += " — locked" if ann.locked else ""
                numbers[ann.label] = numbers.get(ann.label, 0) + 1
                name = f"{ann.label} {numbers[ann.label]}"
                item = QListWidgetItem(f"{name}{extra}")
                item.setToolTip(_source_text(ann))
                item.setData(Qt.ItemDataRole.UserRole, ann.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Unchecked if ann.id in hidden else Qt.CheckState.Checked
                )
                self.list.addItem(item)
                if ann.id in selection:
                    item.setSelected(True)
                if selection and ann.id == selection[0]:
                    self.list.setCurrentItem(item, QItemSelectionModel.SelectionFlag.NoUpdate)
                    detail = f"{name}: {point_count(ann.polygons)} points"
            text = f"{len(annotations)} annotation(s)"
            self.header.setText(text + (f", {review} to review" if review else ""))
            if len(selection) > 1:
                detail += f" (+{len(selection) - 1} selected)"
            self.detail.setText(detail)
        finally:
            self._updating = False

    def _selection_changed(self) -> None:
        if self._updating:
            return
        chosen = [i.data(Qt.ItemDataRole.UserRole) for i in self.list.selectedItems()]
        current = self.list.currentItem()
        first = current.data(Qt.ItemDataRole.UserRole) if current is not None else None
        if first in chosen:
            chosen = [first, *(i for i in chosen if i != first)]
        self.selection_made.emit(chosen)

    def _item_changed(self, item: QListWidgetItem) -> None:
        if not self._updating:
            visible = item.checkState() == Qt.CheckState.Checked
            self.visibility_changed.emit(item.data(Qt.ItemDataRole.UserRole), visible)


def _source_text(ann: Annotation) -> str:
    """Where an annotation came from, for its tooltip: engine, score, time spent."""
    parts = [f"source: {ann.source or 'drawn by hand'}"]
    if ann.score is not None:
        parts.append(f"score {ann.score:.2f}")
    if ann.seconds is not None:
        parts.append(f"{ann.seconds:.1f} s")
    return ", ".join(parts)


class TimingModel(QAbstractTableModel):
    """Rows of `LabelTiming`; replaced as a whole (one reset, not one signal per cell)."""

    HEADERS = ("label", "objects", "s / object", "objects / h")

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[LabelTiming] = []

    def set_rows(self, rows: Sequence[LabelTiming]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        row = self.rows[index.row()]
        values = (
            row.label,
            str(row.objects),
            f"{row.seconds_per_object:.1f}",
            f"{row.objects_per_hour:.0f}",
        )
        return values[index.column()]

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None


class StatsPanel(QWidget):
    """Seconds per object and objects per hour, overall and per label."""

    whole_folder = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scope = QLabel("This session's images")
        folder = QPushButton("Whole folder")
        folder.setToolTip("read the times recorded in every annotation file of the folder")
        folder.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        folder.clicked.connect(self.whole_folder)
        self.total = QLabel("No timed annotations yet.")
        # Wrapped, and no say in the dock's width: a longer line widened the whole dock column.
        self.total.setWordWrap(True)
        self.total.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.scope.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model = TimingModel()
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        # Fixed widths: measuring contents on every update cost hundreds of ms with 80 labels.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in enumerate((110, 60, 70)):
            self.table.setColumnWidth(column, width)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        top.addWidget(self.scope, 1)
        top.addWidget(folder)
        layout.addLayout(top)
        layout.addWidget(self.total)
        layout.addWidget(self.table)

    def show_timings(
        self, total: LabelTiming, rows: Sequence[LabelTiming], scope: str = "This session's images"
    ) -> None:
        self.scope.setText(scope)
        if total.objects:
            noun = "object" if total.objects == 1 else "objects"
            self.total.setText(
                f"{total.objects} {noun}: {total.seconds_per_object:.1f} s per object, "
                f"{total.objects_per_hour:.0f} objects per hour"
            )
        self.model.set_rows(rows)
