"""A verdict the user must read (learning from the folder): a dialog that does not block the window.

The first line says what happened; below it, the measurements it rests on in a fixed-width font so
that a table's columns line up. Enter or Esc closes it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_report(parent: QWidget, title: str, text: str) -> QMessageBox:
    """Open the report (window-modal only where the platform insists; the event loop runs on)."""
    verdict, _, details = text.partition("\n\n")
    box = QMessageBox(QMessageBox.Icon.Information, title, verdict, QMessageBox.StandardButton.Ok)
    box.setParent(parent, box.windowFlags())
    box.setObjectName("reportDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)
    if details:
        box.setInformativeText(f"<pre>{html.escape(details)}</pre>")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box
