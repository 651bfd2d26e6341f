"""Settings and keyboard-shortcut dialogs (views over `Settings` and the action table)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QSignalBlocker, Qt
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
    QLabel,
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
from scubasteve.gui.actions import ACTIONS, SPECS, key_sequences, keys_text


def _engine_notes() -> list[tuple[str, str]]:
    """(engine, why it is limited or unavailable) from the engine registry; empty if unknown."""
    try:
        from scubasteve.inference.engines import engine_status

        return [(s.name, s.reason) for s in engine_status() if s.reason]
    except Exception:  # the registry is optional here: the dialog must open regardless
        return []


class SettingsDialog(QDialog):
    """Edits a copy of the settings; `result_settings()` returns it after OK."""

    def __init__(
        self, settings: Settings, parent: QWidget | None = None, texts: dict[str, str] | None = None
    ) -> None:
        """`texts`: action names as the window shows them now (label keys name their label)."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._texts = texts or {}
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
        self.resize(680, 560)

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
        self.dm_model.setToolTip(
            "a model name from `scubasteve models list`, or a weights file; each engine uses it "
            "when it is of its own kind (IS-Net, DeepMask, SAM 2), else its default"
        )
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
        form.addRow("Engine model", self.dm_model)
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
        """Every action with its key and an alternative key (F1 lists the same). A key already
        taken by another action is swapped: that action gets this one's old key, and the line
        under the table says so (two actions on one key would both stop working)."""
        page = QWidget()
        self.keys = QTableWidget(len(ACTIONS), 3)
        self.keys.setHorizontalHeaderLabels(["action", "shortcut", "alternative"])
        self.keys.verticalHeader().hide()
        self.keys.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            self.keys.setColumnWidth(column, 150)
        self.keys.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._editors: dict[str, QKeySequenceEdit] = {}
        self._alt_editors: dict[str, QKeySequenceEdit] = {}
        self._owner: dict[QKeySequenceEdit, str] = {}
        self._last: dict[QKeySequenceEdit, str] = {}
        for r, spec in enumerate(ACTIONS):
            item = QTableWidgetItem(self._texts.get(spec.id, spec.text))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.keys.setItem(r, 0, item)
            keys = key_sequences(spec, self._settings.shortcuts)
            for column, editors in ((1, self._editors), (2, self._alt_editors)):
                seq = keys[column - 1] if len(keys) >= column else QKeySequence()
                editor = QKeySequenceEdit(seq)
                editor.setMaximumSequenceLength(1)
                editor.setClearButtonEnabled(True)
                editor.keySequenceChanged.connect(lambda _s, e=editor: self._key_changed(e))
                self.keys.setCellWidget(r, column, editor)
                editors[spec.id] = editor
                self._owner[editor] = spec.id
                self._last[editor] = seq.toString()
        self.key_note = QLabel(
            "Click a shortcut and press the new key; a key another action has is swapped."
        )
        self.key_note.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.keys)
        layout.addWidget(self.key_note)
        return page

    def _key_changed(self, editor: QKeySequenceEdit) -> None:
        seq = editor.keySequence()
        if seq.isEmpty():
            # Recording a key starts by clearing the editor: the key it had stays the one a
            # clashing action gets in exchange (`_last`), if nobody has taken it since.
            return
        old = self._last.get(editor, "")
        if any(o is not editor and o.keySequence().toString() == old for o in self._owner):
            old = ""
        self._last[editor] = seq.toString()
        for other, action_id in self._owner.items():
            if other is editor or other.keySequence() != seq:
                continue
            with QSignalBlocker(other):
                other.setKeySequence(QKeySequence(old))
            self._last[other] = old
            text = seq.toString(QKeySequence.SequenceFormat.NativeText)
            given = QKeySequence(old).toString(QKeySequence.SequenceFormat.NativeText) or "no key"
            name = self._texts.get(action_id, SPECS[action_id].text)
            self.key_note.setText(f"{text} was the key of “{name}”; that action has {given} now.")
            self.key_note.setStyleSheet("color: #b36b00; font-weight: bold")

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
            editors = (self._editors[spec.id], self._alt_editors[spec.id])
            keys = [e.keySequence() for e in editors if not e.keySequence().isEmpty()]
            if [k.toString() for k in keys] != [QKeySequence(k).toString() for k in spec.keys]:
                shortcuts[spec.id] = keys_text(keys)
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
            "Wheel zooms at the cursor; space-drag or the middle button pans. Edit tool (V): "
            "Ctrl+click selects several shapes (merge, subtract)."
        )
        layout = QVBoxLayout(self)
        label = QLabel(hint)
        label.setWordWrap(True)
        layout.addWidget(label)
        layout.addWidget(table)
        self.resize(560, 640)
