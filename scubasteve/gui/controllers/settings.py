"""The settings in use: one object every part reads, changed in one place.

A change (the settings dialog, a model learned from the folder) replaces the settings and emits
`changed(new, old)`; each part applies what concerns it in its own `apply_settings` (the window
only connects them), then the file is written. Recent folders and labels are kept in the object
and written on close.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from scubasteve.core.settings import Settings, save_settings

log = logging.getLogger(__name__)

#: The settings an engine is made from: a change restarts the engine.
ENGINE_SETTINGS = ("engine", "device", "deepmask_model")


def engine_changed(new: Settings, old: Settings) -> bool:
    return any(getattr(new, k) != getattr(old, k) for k in ENGINE_SETTINGS)


class SettingsController(QObject):
    changed = Signal(object, object)  # the new Settings, the old
    error = Signal(str)

    def __init__(
        self, settings: Settings, save_on_close: bool = True, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.current = settings
        self._save_on_close = save_on_close

    def replace(self, new: Settings) -> None:
        """Use `new` from now on: every part applies what changed, then it is saved."""
        old, self.current = self.current, new
        self.changed.emit(new, old)
        try:
            save_settings(new)
        except Exception as exc:  # settings are a convenience; a full disk must not stop work
            self.error.emit(f"Settings could not be saved: {exc}")

    def change(self, **values: Any) -> None:
        """`replace` with these values changed (e.g. ``deepmask_model=`` after learning)."""
        self.replace(dataclasses.replace(self.current, **values))

    def folder_opened(self, root: Path) -> None:
        from scubasteve.gui.views.start_page import remember_folder

        self.current.last_folder = str(root)
        self.current.recent_folders = remember_folder(self.current.recent_folders, root)

    def close(self) -> None:
        """On closing the window: write them (recent folders and labels), unless told not to."""
        if not self._save_on_close:
            return
        try:
            save_settings(self.current)
        except Exception as exc:  # closing must not fail on them
            log.warning("could not save settings: %s", exc)
