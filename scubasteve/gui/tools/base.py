"""What every canvas tool shares: the context it works in and do-nothing input handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QPointF, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent

from scubasteve.gui.canvas.scene import CanvasScene
from scubasteve.gui.canvas.view import ImageView
from scubasteve.gui.controllers.document import DocumentController
from scubasteve.gui.controllers.proposals import ProposalController


@dataclass
class ToolContext:
    scene: CanvasScene
    view: ImageView
    proposals: ProposalController
    documents: DocumentController
    label: Callable[[], str]
    selected: Callable[[], str | None]
    select: Callable[[str | None], None]
    tolerance: Callable[[], float]
    min_island: Callable[[], float] = lambda: 0.0  # parts and holes smaller than this (px²) go
    toggle_select: Callable[[str | None], None] = lambda _id: None  # Ctrl+click: several shapes
    locked: Callable[[list[str]], bool] = lambda _ids: False  # True (and says so) if one is locked


class BaseTool(QObject):
    message = Signal(str)  # the status bar
    notice = Signal(str)  # the notice above the image: the tool refused what the user tried
    #: What the strip below the image says while this tool is active and there are no proposals.
    hint = ""

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__()
        self.ctx = ctx

    def screen_px(self, pixels: float) -> float:
        """`pixels` on screen as image pixels at the current zoom."""
        return pixels / max(self.ctx.view.zoom, 1e-6)

    def refuse_read_only(self) -> bool:
        """True (and a notice saying why) when the current image's annotations cannot be changed."""
        state = self.ctx.documents.current
        if state is None or not state.problem:
            return False
        # The reason is in the red banner already; saying it again here made three copies.
        self.notice.emit(
            f"Nothing drawn: this image is read-only (the red banner says why). Fix or move "
            f"{state.json_path.name} to annotate it."
        )
        return True

    def activate(self) -> None:
        pass

    def deactivate(self) -> None:
        pass

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def double_click(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def key(self, event: QKeyEvent) -> bool:
        return False
