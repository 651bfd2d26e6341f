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


class BaseTool(QObject):
    message = Signal(str)

    def __init__(self, ctx: ToolContext) -> None:
        super().__init__()
        self.ctx = ctx

    def screen_px(self, pixels: float) -> float:
        """`pixels` on screen as image pixels at the current zoom."""
        return pixels / max(self.ctx.view.zoom, 1e-6)

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
