"""The menu bar and the toolbar, built from the action table (`gui.actions.ACTIONS`).

Construction only: what each action does is bound by the window (`MainWindow._bind_actions`).
"""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow, QMenu

from scubasteve.gui.actions import ACTIONS, TOOL_ACTIONS, ActionRegistry
from scubasteve.gui.views.panels import LabelButton

#: Toolbar buttons after the tools, in order.
TOOLBAR_TAIL = ("undo", "redo", "prev_image", "next_image", "fit")


def build_menus(window: QMainWindow, acts: ActionRegistry) -> None:
    """One menu per action group, in table order; every action is also added to the window itself
    so that its shortcut works when the menu bar is hidden."""
    menus: dict[str, QMenu] = {}
    for spec in ACTIONS:
        menu = menus.get(spec.group)
        if menu is None:
            menu = menus[spec.group] = window.menuBar().addMenu(spec.group)
        menu.addAction(acts[spec.id])
        window.addAction(acts[spec.id])


def build_toolbar(window: QMainWindow, acts: ActionRegistry) -> LabelButton:
    """The tools toolbar; returns its label button (the window connects and updates it)."""
    bar = window.addToolBar("Tools")
    bar.setObjectName("tools")
    label_button = LabelButton()
    bar.addWidget(label_button)
    bar.addSeparator()
    for action_id in TOOL_ACTIONS:
        bar.addAction(acts[action_id])
    bar.addSeparator()
    for action_id in TOOLBAR_TAIL:
        bar.addAction(acts[action_id])
    return label_button
