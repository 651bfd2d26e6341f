"""The start page shown until a folder is open: open a folder, recent folders, the keys that matter.

A first start otherwise shows an empty grey canvas with the only hint in the status bar.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

KEYS_HTML = (
    "<table cellpadding='4'>"
    "<tr><td><b>drag a box</b></td><td>ten mask proposals for the object in it</td></tr>"
    "<tr><td><b>1 … 9, 0</b> &nbsp; <b>Enter</b></td><td>pick a proposal, accept it (saved at once)</td></tr>"
    "<tr><td><b>L</b></td><td>choose the label (type a few letters, Enter)</td></tr>"
    "</table><p>F1 lists every shortcut.</p>"
)


class StartPage(QWidget):
    open_clicked = Signal()
    folder_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h2>Scuba Steve</h2>Annotate objects with masks: drag a box, pick, Enter.")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton("Open a folder of images…  (Ctrl+O)")
        self.open_button.clicked.connect(self.open_clicked)
        self.recent_title = QLabel("<b>Recent folders</b>")
        self._recent_box = QVBoxLayout()
        self._recent_buttons: list[QPushButton] = []
        keys = QLabel(KEYS_HTML)
        keys.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column = QVBoxLayout()
        column.addStretch(1)
        for widget in (title, self.open_button, self.recent_title):
            column.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addLayout(self._recent_box)
        column.addSpacing(12)
        column.addWidget(keys, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addStretch(2)
        self.setLayout(column)
        self.show_recent([])

    def show_recent(self, folders: list[str]) -> None:
        """Buttons for the recent folders that still exist (most recent first, at most 6)."""
        for button in self._recent_buttons:
            button.deleteLater()
        self._recent_buttons = []
        existing = [f for f in folders if Path(f).is_dir()][:6]
        for folder in existing:
            button = QPushButton(folder)
            button.setFlat(True)
            button.setToolTip(f"open {folder}")
            button.clicked.connect(lambda _=False, f=folder: self.folder_chosen.emit(f))
            self._recent_box.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
            self._recent_buttons.append(button)
        self.recent_title.setVisible(bool(existing))

    @property
    def recent_shown(self) -> list[str]:
        return [b.text() for b in self._recent_buttons]


def remember_folder(recent: list[str], folder: Path, keep: int = 10) -> list[str]:
    """`recent` with `folder` first (once)."""
    text = str(folder)
    return [text, *(f for f in recent if f != text)][:keep]
