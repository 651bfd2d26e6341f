"""The current image's editing state: label, selection, hidden annotations, and what the canvas shows.

It turns document changes into scene updates and user intentions (delete, relabel, hide) into core
commands; widgets only call it and listen to it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from scubasteve.core.annotation import FINISHED_FLAG
from scubasteve.core.commands import (
    AddAnnotation,
    DeleteAnnotation,
    ReplaceAnnotation,
    SetImageFlag,
    relabel,
)
from scubasteve.core.geometry import Box
from scubasteve.core.labels import RecentLabels
from scubasteve.core.settings import Settings
from scubasteve.gui.actions import LABEL_KEYS
from scubasteve.gui.canvas.scene import CanvasScene
from scubasteve.gui.controllers.document import DocState, DocumentController
from scubasteve.gui.controllers.images import LoadedImage
from scubasteve.gui.controllers.proposals import AcceptedProposal, ProposalController
from scubasteve.gui.render import ProposalSet
from scubasteve.gui.stats import timings


class AnnotatorController(QObject):
    annotations_changed = Signal(object, object, object)  # annotations, hidden ids, selection
    selection_changed = Signal(object)
    label_changed = Signal(str)
    stats_changed = Signal(object, object)  # total LabelTiming, per-label rows
    image_changed = Signal(object)  # LoadedImage | None
    message = Signal(str)

    def __init__(
        self,
        scene: CanvasScene,
        documents: DocumentController,
        proposals: ProposalController,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.scene = scene
        self.documents = documents
        self.proposals = proposals
        self.labels = RecentLabels([])
        self.keyed: list[str] = []  # the labels Alt+1 … Alt+9 choose
        self.label = ""
        self.selected: str | None = None  # the selection's first shape (edited, relabelled, ...)
        self.also: list[str] = []  # shapes selected with it (Ctrl+click): merge and subtract
        self.entry: LoadedImage | None = None
        self.all_hidden = False
        self._relabelling = False  # the label picker relabels the selection (else sets the label)
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(250)
        self._stats_timer.timeout.connect(self._compute_stats)
        documents.changed.connect(self._doc_changed)
        proposals.accepted.connect(self._accepted)
        proposals.proposals_changed.connect(self._proposals_changed)
        proposals.current_changed.connect(self._current_proposal)

    # -- label --------------------------------------------------------------------------------------

    def set_labels(self, labels: list[str], recent: list[str]) -> None:
        self.labels = RecentLabels(labels, recent)
        self.keyed = list(labels[:LABEL_KEYS])
        if not self.label:
            self.set_label((self.labels.recent or labels or [""])[0])

    def use_label_key(self, n: int) -> None:
        """Alt+n: the folder's n-th label, for the object being made (if any) and the next ones."""
        if not 1 <= n <= len(self.keyed):
            self.message.emit(f"Label key {n}: this folder has only {len(self.keyed)} labels.")
            return
        self.set_label(self.keyed[n - 1])
        self.message.emit(f"Label: {self.label}")

    def ask_label(self, relabel: bool) -> bool:
        """The label picker opens for the next objects' label, or (`relabel`) for the selected
        shape's; False (and why) when there is nothing to relabel."""
        if relabel and self.selected is None:
            self.message.emit("Select an annotation to relabel first.")
            return False
        self._relabelling = relabel
        return True

    def choose_label(self, label: str) -> None:
        """The label picker's choice, for what it was opened for (`ask_label`)."""
        if self._relabelling:
            self.relabel_selected(label)
        else:
            self.set_label(label)

    def set_label(self, label: str) -> None:
        if not label:
            return
        self.labels.use(label)
        self.label = label
        self.proposals.label = label
        self.label_changed.emit(label)

    # -- image --------------------------------------------------------------------------------------

    @property
    def state(self) -> DocState | None:
        return self.documents.current

    def show_image(self, entry: LoadedImage) -> None:
        self.entry = entry
        self.documents.adopt(entry.key, entry.doc, entry.json_path, entry.problem)
        self.documents.activate(entry.key)
        self.selected = None
        self.scene.set_image(entry.levels)
        self.proposals.set_image(entry.key, entry.rgb)
        self.image_changed.emit(entry)
        for warning in entry.warnings[:3]:
            self.message.emit(warning)
        self.refresh()

    def undo(self) -> None:
        """Ctrl+Z: while proposals are open it acts on them (the last click, then the box); else
        the document's last change."""
        if not self.proposals.undo():
            self.documents.undo_group.undo()

    @property
    def can_undo(self) -> bool:
        return self.documents.undo_group.canUndo() or self.proposals.active

    def selected_box(self) -> Box | None:
        """The selected shape's bounds (None when nothing with an outline is selected)."""
        state = self.state
        if state is None or self.selected is None:
            return None
        try:
            return state.doc.get(self.selected).bounds()
        except KeyError:
            return None

    def apply_settings(self, new: Settings, old: Settings) -> None:
        """Each object its own colour, or one per label."""
        if new.instance_colors != self.scene.instance_colors:
            self.scene.instance_colors = new.instance_colors
            self.refresh()

    def refresh(self) -> None:
        state = self.state
        if state is None:
            self.scene.sync_annotations([], set(), None)
            self.annotations_changed.emit([], set(), None)
            return
        anns = state.doc.annotations
        ids = {a.id for a in anns}
        self.also = [i for i in self.also if i in ids]
        if self.selected is not None and self.selected not in ids:
            self.selected, self.also = (self.also[0], self.also[1:]) if self.also else (None, [])
            self.selection_changed.emit(self.selected)
        hidden = ids if self.all_hidden else state.hidden
        self.scene.sync_annotations(anns, hidden, self.selected, set(self.also))
        self.annotations_changed.emit(list(anns), set(hidden), self.selection())

    def _proposals_changed(self, result: ProposalSet | None) -> None:
        """The box, its clicks and (once chosen) the current proposal on the canvas."""
        p = self.proposals
        if result is None:
            self.scene.show_proposal(None)
            self.scene.set_box(p.box if p.active else None, pending=True)
            self.scene.set_points(p.points if p.active else ())
        else:
            self.scene.set_box(result.box)
            self.scene.set_points(result.points)

    def _current_proposal(self, index: int) -> None:
        result = self.proposals.result
        self.scene.show_proposal(result.views[index] if result is not None and index >= 0 else None)

    def _doc_changed(self, key: str) -> None:
        if self.state is not None and key == self.state.key:
            self.refresh()
        self.update_stats()

    def update_stats(self) -> None:
        """Recompute the time statistics soon (bursts of changes are computed once)."""
        self._stats_timer.start()

    def _compute_stats(self) -> None:
        anns = [a for doc in self.documents.all_docs() for a in doc.annotations]
        total, rows = timings(anns)
        self.stats_changed.emit(total, rows)

    # -- edits --------------------------------------------------------------------------------------

    def _accepted(self, accepted: AcceptedProposal) -> None:
        if self.documents.push(AddAnnotation(accepted.annotation), accepted.image_key):
            self.labels.use(accepted.annotation.label)

    def selection(self) -> list[str]:
        """The selected shapes' ids, the first-selected first."""
        return ([self.selected] if self.selected is not None else []) + self.also

    def select(self, annotation_id: str | None) -> None:
        """Select one shape (or none)."""
        self.set_selection([annotation_id] if annotation_id is not None else [])

    def toggle_in_selection(self, annotation_id: str | None) -> None:
        """Ctrl+click: add the shape to the selection, or take it out."""
        if annotation_id is None:
            return
        ids = self.selection()
        self.set_selection(
            [i for i in ids if i != annotation_id]
            if annotation_id in ids
            else [*ids, annotation_id]
        )

    def set_selection(self, ids: list[str]) -> None:
        primary = ids[0] if ids else None
        also = [i for i in dict.fromkeys(ids[1:]) if i != primary]
        if primary == self.selected and also == self.also:
            return
        changed = primary != self.selected
        self.selected, self.also = primary, also
        if changed:
            self.selection_changed.emit(primary)
        self.refresh()

    def refuse_locked(self, ids: list[str]) -> bool:
        """True (and a message naming it) when one of `ids` is locked against edits."""
        state = self.state
        if state is None:
            return False
        for ann in state.doc.annotations:
            if ann.id in ids and ann.locked:
                self.message.emit(
                    f"{ann.label} is locked against edits; K unlocks the selected shape."
                )
                return True
        return False

    def set_visible(self, annotation_id: str, visible: bool) -> None:
        state = self.state
        if state is None:
            return
        if visible:
            state.hidden.discard(annotation_id)
        else:
            state.hidden.add(annotation_id)
        self.refresh()

    def toggle_selected_hidden(self) -> None:
        if self.state is not None and self.selected is not None:
            self.set_visible(self.selected, self.selected in self.state.hidden)

    def toggle_all_hidden(self) -> None:
        self.all_hidden = not self.all_hidden
        self.refresh()

    def delete_selected(self) -> None:
        if self.selected is None:
            self.message.emit("Select an annotation first (click it in the list or with V).")
            return
        if not self.refuse_locked([self.selected]):
            self.documents.push(DeleteAnnotation(self.selected))

    def relabel_selected(self, label: str) -> None:
        state = self.state
        if state is None or self.selected is None or self.refuse_locked([self.selected]):
            return
        if self.documents.push(relabel(state.doc, self.selected, label)):
            self.set_label(label)  # the previous object's label is the next object's default

    def toggle_finished(self) -> None:
        """Mark the image finished (done in the list), or not finished again; undoable."""
        state = self.state
        if state is None:
            return
        finished = not state.doc.finished
        text = "Mark image finished" if finished else "Mark image not finished"
        if self.documents.push(SetImageFlag(FINISHED_FLAG, finished, text=text)):
            self.message.emit(
                "Image finished: done in the list (Shift+D goes to the next image to do)."
                if finished
                else "Image no longer marked finished."
            )

    def review(self, accept: bool) -> None:
        """Y / N on a shape awaiting review (a pre-annotation, a carried shape, a mask made from a
        rectangle): the selected one if it awaits review, else the first. Accepting clears the
        flag; rejecting removes the shape, or gives back the rectangle it stood in for. The next
        shape awaiting review is selected."""
        state = self.state
        if state is None:
            return
        pending = [a for a in state.doc.annotations if a.needs_review]
        if not pending:
            self.message.emit("No shapes to review on this image.")
            return
        target = next((a for a in pending if a.id == self.selected), pending[0])
        if accept:
            command = ReplaceAnnotation(target.reviewed(), text="Accept shape")
        else:
            restored = target.rejected()
            command = (
                ReplaceAnnotation(restored, text="Reject shape (rectangle back)")
                if restored is not None
                else DeleteAnnotation(target.id, text="Reject shape")
            )
        self.documents.push(command)
        rest = [a for a in pending if a.id != target.id]
        self.select(rest[0].id if rest else None)
