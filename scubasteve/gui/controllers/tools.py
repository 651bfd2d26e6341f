"""The canvas tools: which one is active (W, P, V, B, E), its hint, the brush size, and the vertex
tool's handles kept in step with the document and the selection."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal

from scubasteve.gui.tools.base import BaseTool, ToolContext
from scubasteve.gui.tools.box_tool import BoxTool
from scubasteve.gui.tools.brush_tool import BrushTool
from scubasteve.gui.tools.polygon_tool import PolygonTool
from scubasteve.gui.tools.vertex_tool import VertexTool


class ToolController(QObject):
    changed = Signal(str)  # the active tool's name
    message = Signal(str)  # news from a tool (the status bar)
    notice = Signal(str)  # a tool refused what the user tried (the notice above the image)

    def __init__(self, ctx: ToolContext, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._brushes = (BrushTool(ctx, pool), BrushTool(ctx, pool, erase=True))
        self._vertex = VertexTool(ctx)
        self.tools: dict[str, BaseTool] = {
            "box": BoxTool(ctx), "polygon": PolygonTool(ctx), "edit": self._vertex,
            "brush": self._brushes[0], "eraser": self._brushes[1],
        }  # fmt: skip
        self.name = ""
        for tool in self.tools.values():
            tool.message.connect(self.message)
            tool.notice.connect(self.notice)

    @property
    def active(self) -> BaseTool:
        return self.tools[self.name]

    def hint(self, read_only: bool) -> str:
        """What the strip below the image says while no proposals are shown."""
        if read_only:
            return "This image is read-only: its annotation file cannot be read (see above)."
        return self.active.hint

    def set_tool(self, name: str) -> None:
        """Make `name` the canvas tool (leaving the box tool drops the proposals shown)."""
        if name == self.name:
            return
        old = self.tools.get(self.name)
        if old is not None:
            old.deactivate()
        if name != "box":
            self._ctx.proposals.discard()
        self.name = name
        tool = self.tools[name]
        tool.activate()
        self._ctx.view.tool = tool
        self._ctx.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self.changed.emit(name)

    def refresh(self, key: str | None = None) -> None:
        """The document `key` (None: the selection or the image) changed: the vertex tool's handles
        follow it when it is the current one."""
        current = self._ctx.documents.current
        if self.name == "edit" and (key is None or (current is not None and key == current.key)):
            self._vertex.refresh()

    def resize_brush(self, factor: float) -> None:
        for brush in self._brushes:
            brush.resize(factor)
        self.message.emit(f"Brush radius: {self._brushes[0].radius:.0f} px")
