"""Where the window tells the user something, so that each thing is said once, whole, and in time.

Passing news goes to the status bar; what must be read (errors, refusals) and news too long for the
status bar go to the notice above the image (ADR 0504: never a dialog). A message about one image
(a read-only refusal) leaves with that image instead of staying over the next one. Reasons the red
banner already shows are not repeated here (issue 22: one new user saw the same reason three times).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from scubasteve.gui.controllers.engine_host import EngineInfo
from scubasteve.gui.views.panels import NoticeBar, StatusBar

log = logging.getLogger(__name__)

#: How long news stays in the status bar (ms) and a long one in the notice (s).
STATUS_MS = 8000
LONG_NEWS_S = 12.0

_DEVICE_NAMES = {"cuda": "CUDA", "mps": "MPS (Apple GPU)", "cpu": "CPU"}


def device_fallback(requested: str, used: str, engine: str) -> str:
    """What to say when the engine runs on another device than the one chosen ("" if it does not).

    Engines fall back to the CPU by themselves when the chosen GPU is missing; the user must know,
    or a slow CPU run looks like a slow GPU."""
    if requested in ("auto", "cpu", "") or used.split(":")[0] == requested:
        return ""
    asked = _DEVICE_NAMES.get(requested, requested)
    runs = _DEVICE_NAMES.get(used.split(":")[0], used)
    return (
        f"{asked} was chosen in the settings, but the {engine} engine runs on the {runs}: no "
        f"usable {asked} device was found here, or this engine has no {asked} support."
    )


class Messages(QObject):
    """Routes the window's messages to the status bar or the notice."""

    said = Signal(str)  # every message, wherever it was shown (tests and logs listen)

    def __init__(self, status: StatusBar, notice: NoticeBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._status = status
        self._notice = notice
        self._status_image: str | None = None  # the image the status bar's message is about
        self._image: str | None = None  # the image shown

    def info(self, text: str, image_key: str | None = None) -> None:
        """News: the status bar, or the notice when the status bar would cut it off."""
        log.info("%s", text)
        self.said.emit(text)
        if self._status.fits(text):
            self._status.showMessage(text, STATUS_MS)
            self._status_image = image_key
        else:
            self._status.clearMessage()  # older news ("… is learning") would contradict it
            self._notice.show_text(text, LONG_NEWS_S, image_key=image_key)

    def error(self, text: str, image_key: str | None = None) -> None:
        """Something went wrong or was refused: the notice (only there, not twice)."""
        log.info("%s", text)
        self.said.emit(text)
        self._status.clearMessage()  # older news ("Exporting COCO…") would contradict it
        self._notice.show_text(text, image_key=image_key)

    def refusal(self, text: str) -> None:
        """Something was refused on the image shown: said until another image is shown."""
        self.error(text, self._image)

    def outcome(self, text: str, failed: bool) -> None:
        """The end of a job: news, or an error when part of it failed."""
        (self.error if failed else self.info)(text)

    def engine_ready(self, info: EngineInfo, chosen_device: str, fell_back: bool) -> None:
        """The status bar names the engine now serving; a device other than the chosen one, and
        why better engines cannot serve (the weights button), are said."""
        missing = info.weights_missing or ("an engine could not start" if fell_back else "")
        self._status.set_engine(info.label, info.device, info.note, missing)
        fallback = device_fallback(chosen_device, info.device, info.name)
        if fallback:
            self.error(fallback)

    def image_changed(self, key: str | None) -> None:
        """Messages about another image go (they would be read as about this one)."""
        self._image = key
        self._notice.forget_image(key)
        if self._status_image is not None and self._status_image != key:
            self._status.clearMessage()
            self._status_image = None
