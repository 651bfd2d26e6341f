"""A verdict the user must read (learning from the folder): a dialog that does not block the window.

The first paragraph says what happened; below it, the measurements it rests on in a fixed-width
font so that a table's columns line up. Enter or Esc closes it.
"""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase, QFontMetrics
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


class ReportDialog(QDialog):
    """`verdict` (plain words, wrapped) over `details` (fixed-width, read-only, scrollable)."""

    def __init__(self, title: str, verdict: str, details: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName("reportDialog")
        self.setWindowTitle(title)
        layout = QVBoxLayout(self)
        self.verdict = QLabel(verdict)
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.details.setFont(font)
        metrics = QFontMetrics(font)
        lines = details.splitlines() or [""]
        width = max(metrics.horizontalAdvance(line) for line in lines) + 40
        self.details.setMinimumWidth(min(900, max(420, width)))
        self.details.setMinimumHeight(min(360, metrics.lineSpacing() * (len(lines) + 2)))
        self.details.setVisible(bool(details))
        layout.addWidget(self.details)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setDefault(True)
        ok.setFocus()


def show_report(parent: QWidget, title: str, text: str) -> ReportDialog:
    """Open `text` (verdict, a blank line, details) without blocking the window."""
    verdict, _, details = text.partition("\n\n")
    dialog = ReportDialog(title, verdict, details, parent)
    dialog.setModal(False)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()  # Enter or Esc close it at once, without reaching for the mouse
    return dialog
