"""Whole-shape edits on the selection: merge, subtract, lock, and simpler / finer outlines.

Each is one undo step through the document (and so saved at once). Merge joins the selected shapes
of one label into the first-selected; subtract cuts the others out of the first-selected; lock
sets the LabelMe shape flag `locked`, which every editing path respects. Simpler / finer trace the
shape's own pixels again with a larger or smaller tolerance (`core.shape_ops.TOLERANCES`); the
pixels are those of the shape when the user first pressed the key, so stepping back and forth
never drifts (re-tracing a simplified outline would lose a little more each time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import Annotation
from scubasteve.core.commands import DeleteAnnotation, ReplaceAnnotation, replace_geometry
from scubasteve.core.geometry import Polygon
from scubasteve.core.shape_ops import (
    TOLERANCES,
    merge,
    nearest_step,
    point_count,
    retrace,
    shape_pixels,
    subtract,
)
from scubasteve.gui.controllers.annotator import AnnotatorController
from scubasteve.gui.controllers.document import DocumentController
from scubasteve.gui.workers import submit


@dataclasses.dataclass
class _Outline:
    """The pixels a shape's outline is traced from, and the tolerance step it has now."""

    shape: Annotation  # the annotation object this outline produced (identity: still current?)
    pixels: tuple[int, int, np.ndarray]
    step: int


class ShapeController(QObject):
    message = Signal(str)

    def __init__(
        self,
        documents: DocumentController,
        annotator: AnnotatorController,
        pool: QThreadPool,
        tolerance: Callable[[], float],
        min_island: Callable[[], float],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._documents, self._annotator, self._pool = documents, annotator, pool
        self._tolerance, self._min_island = tolerance, min_island
        self._outlines: dict[str, _Outline] = {}
        self._tracing = False
        self._queued: list[int] = []  # key presses that came while a trace was running

    def _selected(self) -> list[Annotation]:
        """The selected shapes with an area (lines and points have no outline to combine)."""
        state = self._documents.current
        if state is None:
            return []
        by_id = {a.id: a for a in state.doc.annotations if a.polygons}
        return [by_id[i] for i in self._annotator.selection() if i in by_id]

    def _geometry(self, ann: Annotation, polygons: tuple[Polygon, ...], text: str) -> bool:
        """Give `ann` (in the current document) new polygons, as one undoable step."""
        state = self._documents.current
        if state is None:
            return False
        command = replace_geometry(state.doc, ann.id, polygons)
        command.text = text
        return self._documents.push(command)

    # -- merge and subtract ---------------------------------------------------------------------------

    def merge(self) -> None:
        shapes = self._selected()
        if len(shapes) < 2:
            self.message.emit("Merge: select two shapes of one label (Ctrl+click the second).")
            return
        labels = list(dict.fromkeys(s.label for s in shapes))
        if len(labels) > 1:
            self.message.emit(
                f"Merge joins shapes of one label; these are {', '.join(labels)}. Relabel first (R)."
            )
            return
        if self._annotator.refuse_locked([s.id for s in shapes]):
            return
        first, others = shapes[0], shapes[1:]
        polygons = merge([s.polygons for s in shapes], self._min_island())
        with self._documents.macro(f"Merge {len(shapes)} shapes"):
            self._geometry(first, polygons, "Merge")
            for other in others:
                self._documents.push(DeleteAnnotation(other.id, text="Merge"))
        self._annotator.select(first.id)

    def subtract(self) -> None:
        shapes = self._selected()
        if len(shapes) < 2:
            self.message.emit(
                "Subtract: select the shape to cut, then Ctrl+click the shape to cut away."
            )
            return
        first, cutters = shapes[0], shapes[1:]
        if self._annotator.refuse_locked([first.id]):
            return
        polygons = subtract(first.polygons, [c.polygons for c in cutters], self._min_island())
        if not polygons:
            self.message.emit("Nothing of the shape would be left; delete it instead (Delete).")
            return
        self._geometry(first, polygons, "Subtract")

    # -- lock -----------------------------------------------------------------------------------------

    def toggle_lock(self) -> None:
        """Lock the selected shapes against edits, or unlock them (when the first is locked)."""
        shapes = self._selected()
        if not shapes:
            self.message.emit("Select a shape to lock (click it with V or in the list).")
            return
        lock = not shapes[0].locked
        text = "Lock" if lock else "Unlock"
        with self._documents.macro(f"{text} {len(shapes)} shape(s)"):
            for ann in shapes:
                self._documents.push(ReplaceAnnotation(ann.with_lock(lock), text))
        names = ", ".join(s.label for s in shapes)
        self.message.emit(f"{'Locked' if lock else 'Unlocked'}: {names}.")

    # -- simpler and finer ------------------------------------------------------------------------------

    def simpler(self) -> None:
        self._step(+1)

    def finer(self) -> None:
        self._step(-1)

    def _step(self, direction: int) -> None:
        if self._tracing:  # each press counts, also when they come faster than the traces
            self._queued.append(direction)
            return
        shapes = self._selected()
        if not shapes or not shapes[0].polygons:
            self.message.emit("Select a shape first (V, then click it).")
            return
        ann = shapes[0]
        if self._annotator.refuse_locked([ann.id]):
            return
        state = self._documents.current
        if state is None:
            return
        outline = self._outlines.get(ann.id)
        if outline is None or outline.shape is not ann:
            # Edited since (or never stepped): its pixels now, traced with the settings' tolerance.
            outline = _Outline(ann, shape_pixels(ann.polygons), nearest_step(self._tolerance()))
        start, key, min_island = point_count(ann.polygons), state.key, self._min_island()
        pixels, first = outline.pixels, outline.step + direction

        def trace() -> tuple[int, tuple[Polygon, ...]]:
            # Step on until the outline changes: two tolerances can give the same vertices.
            step = first
            while 0 <= step < len(TOLERANCES):
                polygons = retrace(pixels, TOLERANCES[step], min_island)
                if polygons and point_count(polygons) != start:
                    return step, polygons
                step += direction
            return -1, ()

        def applied(found: tuple[int, tuple[Polygon, ...]]) -> None:
            step, polygons = found
            current = self._documents.current
            if current is None or current.key != key or ann not in current.doc.annotations:
                return  # the user moved on
            if step < 0:
                what = "simplest" if direction > 0 else "finest: the exact pixel outline"
                self.message.emit(f"{ann.label}: already the {what} ({start} points).")
                return
            if self._geometry(
                ann, polygons, "Simpler outline" if direction > 0 else "Finer outline"
            ):
                new = current.doc.get(ann.id)
                self._outlines[ann.id] = _Outline(new, pixels, step)
                self.message.emit(
                    f"{ann.label}: {point_count(polygons)} points (was {start}), outline within "
                    f"{TOLERANCES[step]:g} px of its pixels."
                )

        def done(found: tuple[int, tuple[Polygon, ...]]) -> None:
            applied(found)
            self._next_queued()

        def failed(exc: BaseException) -> None:
            self.message.emit(f"Could not trace the outline: {exc}")
            self._queued.clear()
            self._next_queued()

        self._tracing = True
        submit(self._pool, trace, on_done=done, on_error=failed)

    def _next_queued(self) -> None:
        self._tracing = False
        if self._queued:
            self._step(self._queued.pop(0))
