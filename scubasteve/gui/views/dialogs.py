"""Settings and keyboard-shortcut dialogs (views over `Settings` and the action table)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QKeySequenceEdit,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from scubasteve.core.settings import DEVICES, ENGINES, PIXELLIB_SPEEDS, Settings
from scubasteve.gui.actions import ACTIONS


def _engine_notes() -> list[tuple[str, str]]:
    """(engine, why it is limited or unavailable) from the engine registry; empty if unknown."""
    try:
        from scubasteve.inference.engines import engine_status

        return [(s.name, s.reason) for s in engine_status() if s.reason]
    except Exception:  # the registry is optional here: the dialog must open regardless
        return []


class SettingsDialog(QDialog):
    """Edits a copy of the settings; `result_settings()` returns it after OK."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = dataclasses.replace(settings, shortcuts=dict(settings.shortcuts))
        tabs = QTabWidget(self)
        tabs.addTab(self._general(), "General")
        tabs.addTab(self._shortcuts(), "Shortcuts")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)
        self.resize(560, 520)

    def _general(self) -> QWidget:
        s = self._settings
        page = QWidget()
        form = QFormLayout(page)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(s.device)
        self.engine = QComboBox()
        self.engine.addItems(list(ENGINES))
        self.engine.setCurrentText(s.engine)
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 20.0)
        self.tolerance.setSingleStep(0.25)
        self.tolerance.setValue(s.polygon_tolerance)
        self.tolerance.setSuffix(" px")
        self.min_island = QDoubleSpinBox()
        self.min_island.setRange(0.0, 10000.0)
        self.min_island.setDecimals(0)
        self.min_island.setValue(s.min_island_area)
        self.min_island.setSuffix(" px²")
        self.min_island.setToolTip("smaller parts and holes of an accepted mask are dropped")
        self.instance_colors = QCheckBox("a colour per object (else per label)")
        self.instance_colors.setChecked(s.instance_colors)
        self.proposals = QSpinBox()
        self.proposals.setRange(1, 10)
        self.proposals.setValue(s.proposals)
        self.output = QLineEdit(s.output_folder)
        self.output.setPlaceholderText("beside the images")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.output)
        row.addWidget(browse)
        self.dm_model = QLineEdit(s.deepmask_model)
        self.dm_model.setPlaceholderText("the default installed model")
        self.dm_model.setToolTip("a model name from `scubasteve models list`, or a weights file")
        self.pl_model = QLineEdit(s.pixellib_model)
        self.pl_speed = QComboBox()
        self.pl_speed.addItems(list(PIXELLIB_SPEEDS))
        self.pl_speed.setCurrentText(s.pixellib_speed)
        self.pl_score = QDoubleSpinBox()
        # The minimum stands for "PixelLib's threshold for the input size" (None in settings).
        self.pl_score.setRange(-0.05, 1.0)
        self.pl_score.setSingleStep(0.05)
        self.pl_score.setSpecialValueText("PixelLib's for the size")
        score = s.pixellib_min_score
        self.pl_score.setValue(-0.05 if score is None else score)
        form.addRow("Device", self.device)
        form.addRow("Proposal engine", self.engine)
        for name, reason in _engine_notes():
            self.engine.setItemData(self.engine.findText(name), reason, Qt.ItemDataRole.ToolTipRole)
        form.addRow("DeepMask model", self.dm_model)
        form.addRow("Proposals per box", self.proposals)
        form.addRow("Polygon tolerance", self.tolerance)
        form.addRow("Smallest part or hole", self.min_island)
        form.addRow("Colours", self.instance_colors)
        form.addRow("Annotation folder", row)
        form.addRow("PixelLib model", self.pl_model)
        form.addRow("PixelLib input size", self.pl_speed)
        form.addRow("PixelLib minimum score", self.pl_score)
        return page

    def _shortcuts(self) -> QWidget:
        self.keys = QTableWidget(len(ACTIONS), 2)
        self.keys.setHorizontalHeaderLabels(["action", "shortcut"])
        self.keys.verticalHeader().hide()
        self.keys.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.keys.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._editors: dict[str, QKeySequenceEdit] = {}
        for r, spec in enumerate(ACTIONS):
            item = QTableWidgetItem(spec.text)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.keys.setItem(r, 0, item)
            text = self._settings.shortcuts.get(spec.id, spec.keys[0] if spec.keys else "")
            editor = QKeySequenceEdit(QKeySequence(text))
            self.keys.setCellWidget(r, 1, editor)
            self._editors[spec.id] = editor
        return self.keys

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Annotation folder", self.output.text())
        if folder:
            self.output.setText(folder)

    def result_settings(self) -> Settings:
        s = self._settings
        s.device = self.device.currentText()
        s.engine = self.engine.currentText()
        s.deepmask_model = self.dm_model.text().strip()
        s.proposals = self.proposals.value()
        s.polygon_tolerance = float(self.tolerance.value())
        s.min_island_area = float(self.min_island.value())
        s.instance_colors = self.instance_colors.isChecked()
        s.output_folder = self.output.text().strip()
        s.pixellib_model = self.pl_model.text().strip() or "mask_rcnn_coco"
        s.pixellib_speed = self.pl_speed.currentText()
        score = float(self.pl_score.value())
        s.pixellib_min_score = None if score < 0 else score
        shortcuts = {}
        for spec in ACTIONS:
            text = self._editors[spec.id].keySequence().toString()
            default = QKeySequence(spec.keys[0]).toString() if spec.keys else ""
            if text != default:
                shortcuts[spec.id] = text
        s.shortcuts = shortcuts
        return s


class ShortcutsDialog(QDialog):
    """F1: every action and its keys."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(rows), 3, self)
        table.setHorizontalHeaderLabels(["group", "action", "keys"])
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                table.setItem(r, c, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        self.table = table
        hint = (
            "Mouse: drag a box for proposals; click inside it to add (left) or remove (right) a spot. "
            "Wheel zooms at the cursor; space-drag or the middle button pans."
        )
        layout = QVBoxLayout(self)
        from PySide6.QtWidgets import QLabel

        label = QLabel(hint)
        label.setWordWrap(True)
        layout.addWidget(label)
        layout.addWidget(table)
        self.resize(560, 640)
