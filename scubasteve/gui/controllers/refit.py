"""Shapes the engine fits anew, for review: the previous image's shapes carried onto this one (C),
and rectangles turned into masks (Shift+W); issue 22 items 2 and 4, ADR 0511.

Both make one engine request per shape on the window's engine thread (`EngineHost`, request ids
of its own so that the proposal loop ignores them), trace the chosen masks on a worker and add
them to the image as one undoable step, each flagged for review: Y accepts, N rejects, as for
pre-annotations (`AnnotatorController.review`).

- Carry: the previous image's shapes (those awaiting review stay behind) are followed to where
  their content went (`inference.carry.seeds`, on a worker), and each moved box is proposed with
  the moved mask as the prior; the engine's proposal is kept when it agrees with the moved mask
  (`inference.carry.refit`), else the moved mask itself. A shape already here (the same label over
  the same box) is not carried twice.
- Rectangles: each selected rectangle, or every rectangle of the image when none is selected,
  is replaced by the engine's top proposal for its box; rejecting that gives the rectangle back.

Going to another image cancels a batch that has not finished (nothing of it is added).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import LOCKED_FLAG, Annotation, MaskPatch
from scubasteve.core.cancel import CancelToken
from scubasteve.core.commands import AddAnnotation, ReplaceAnnotation
from scubasteve.core.geometry import Box, Polygon
from scubasteve.gui.controllers.annotator import AnnotatorController
from scubasteve.gui.controllers.engine_host import EngineHost, ProposalRequest
from scubasteve.gui.controllers.project import ProjectController
from scubasteve.gui.render import ProposalSet
from scubasteve.gui.workers import submit
from scubasteve.inference.carry import Seed

#: A carried shape is "already here" when a shape of its label covers a box this similar (IoU).
SAME_BOX_IOU = 0.8


@dataclass
class _Job:
    """One shape of a batch: what it comes from, the box asked about, the prior (carry only)."""

    shape: Annotation
    box: Box
    prior: MaskPatch | None = None
    result: Annotation | None = None
    done: bool = False


@dataclass
class _Batch:
    key: str
    carry: bool
    origin: str  # what the shapes come from, for the messages
    jobs: dict[int, _Job] = field(default_factory=dict)
    cancel: CancelToken = field(default_factory=CancelToken)
    failed: list[str] = field(default_factory=list)


def carry_seeds(
    shapes: list[Annotation] | None, json_path: Path, image_path: Path,
    previous: np.ndarray | None, image: np.ndarray,
) -> tuple[list[Seed], int, int]:  # fmt: skip
    """On a worker: the previous image's shapes (read from `json_path` when not open) followed
    onto `image`. Returns the seeds, how many shapes await review (not carried) and how many
    could not be followed (no area, or out of the image)."""
    from scubasteve.inference.carry import seeds
    from scubasteve.io.images import load_image

    if shapes is None:
        from scubasteve.io.labelme import read_labelme

        shapes = read_labelme(json_path, []).annotations if json_path.is_file() else []
    waiting = [a for a in shapes if a.needs_review]
    ready = [a for a in shapes if not a.needs_review and a.has_area]
    found, lost = seeds(ready, previous if previous is not None else load_image(image_path), image)
    return found, len(waiting), lost


class RefitController(QObject):
    message = Signal(str)

    def __init__(
        self,
        engine: EngineHost,
        annotator: AnnotatorController,
        project: ProjectController,
        pool: QThreadPool,
        outline: Callable[[MaskPatch], list[Polygon]],
        k: Callable[[], int],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine, self._annotator, self._project = engine, annotator, project
        self._documents = annotator.documents
        self._pool, self._outline, self._k = pool, outline, k
        self._batch: _Batch | None = None
        engine.proposals_ready.connect(self._on_ready)
        engine.proposals_failed.connect(self._on_failed)
        annotator.image_changed.connect(lambda _entry: self.cancel())

    @property
    def running(self) -> bool:
        return self._batch is not None

    def cancel(self) -> None:
        batch, self._batch = self._batch, None
        if batch is not None:
            batch.cancel.cancel()
            self.message.emit(f"{'Carrying' if batch.carry else 'Rectangles to masks'} cancelled.")

    def _editable(self) -> bool:
        state, entry = self._documents.current, self._annotator.entry
        if state is None or entry is None:
            self.message.emit("Open an image first.")
            return False
        if state.problem:
            self.message.emit("This image is read-only: its annotation file cannot be read.")
            return False
        if self._batch is not None:
            self.message.emit("Still fitting the last shapes; a moment.")
            return False
        return True

    # -- carry ----------------------------------------------------------------------------------------

    def carry(self) -> None:
        """C: the previous image's shapes onto this one, each re-fitted, for review."""
        if not self._editable():
            return
        entry = self._annotator.entry
        assert entry is not None
        previous = self._project.previous_image(entry.path)
        if previous is None:
            self.message.emit("This is the first image: there is no previous one to carry from.")
            return
        state = self._documents.get(str(previous))
        shapes = list(state.doc.annotations) if state is not None else None
        cached = self._project.loader.cached(previous)
        batch = self._batch = _Batch(entry.key, carry=True, origin=previous.name)
        self.message.emit(f"Carrying the shapes of {previous.name}…")
        submit(
            self._pool, carry_seeds, shapes, self._project.annotation_path(previous), previous,
            cached.rgb if cached is not None else None, entry.rgb,
            on_done=lambda found: self._seeded(batch, *found),
            on_error=lambda exc: self._stop(batch, f"Could not carry from {previous.name}: {exc}"),
        )  # fmt: skip

    def _seeded(self, batch: _Batch, found: list[Seed], waiting: int, lost: int) -> None:
        if batch is not self._batch:
            return
        state = self._documents.get(batch.key)
        here = [(a.label, b) for a in (state.doc.annotations if state else []) if (b := a.bounds())]
        seeds = [
            s for s in found
            if not any(label == s.shape.label and box.iou(s.prior.box()) >= SAME_BOX_IOU
                       for label, box in here)
        ]  # fmt: skip
        skipped = [
            f"{waiting} awaiting review there" if waiting else "",
            f"{lost} that could not be followed" if lost else "",
            f"{len(found) - len(seeds)} already here" if len(found) > len(seeds) else "",
        ]
        note = "; ".join(s for s in skipped if s)
        if not seeds:
            self._stop(
                batch, f"Nothing to carry from {batch.origin}" + (f" ({note})." if note else ".")
            )
            return
        batch.origin += f" ({note})" if note else ""
        for seed in seeds:
            self._ask(batch, _Job(seed.shape, seed.box, seed.prior))

    # -- rectangles -----------------------------------------------------------------------------------

    def boxes_to_masks(self) -> None:
        """Shift+W: the selected rectangles (or all of the image's) become masks, for review."""
        if not self._editable():
            return
        state = self._documents.current
        assert state is not None
        selected = set(self._annotator.selection())
        rectangles = [
            a for a in state.doc.annotations
            if a.shape_type == "rectangle" and (not selected or a.id in selected)
        ]  # fmt: skip
        if not rectangles:
            where = "selected" if selected else "on this image"
            self.message.emit(f"No LabelMe rectangles {where} to turn into masks.")
            return
        locked = [a for a in rectangles if a.locked]
        if locked:
            self.message.emit(f"{len(locked)} locked rectangle(s) left as they are (K unlocks).")
        batch = self._batch = _Batch(state.key, carry=False, origin="rectangles")
        for rect in rectangles:
            box = rect.bounds()
            if not rect.locked and box is not None:
                self._ask(batch, _Job(rect, box))
        if not batch.jobs:
            self._batch = None

    # -- engine answers ---------------------------------------------------------------------------------

    def _ask(self, batch: _Batch, job: _Job) -> None:
        entry = self._annotator.entry
        if entry is None:
            return
        request = ProposalRequest(
            request_id=self._engine.new_request_id(), image_key=batch.key, image=entry.rgb,
            box=job.box, k=self._k(), previous=job.prior, cancel=batch.cancel,
        )  # fmt: skip
        batch.jobs[request.request_id] = job
        self._engine.propose(request)

    def _job(self, request_id: int) -> tuple[_Batch, _Job] | None:
        batch = self._batch
        job = batch.jobs.get(request_id) if batch is not None else None
        return (batch, job) if batch is not None and job is not None and not job.done else None

    def _on_ready(self, result: ProposalSet) -> None:
        found = self._job(result.request_id)
        if found is None:
            return
        batch, job = found
        proposals = [v.proposal for v in result.views]
        if batch.carry:
            from scubasteve.inference.carry import refit

            assert job.prior is not None
            chosen = refit(proposals, job.prior)
            self._trace(batch, job, chosen.patch if chosen else job.prior,
                        chosen.source if chosen else "carried", chosen.quality if chosen else None)  # fmt: skip
        elif proposals:
            top = proposals[0]
            self._trace(batch, job, top.patch, top.source, top.quality)
        else:
            self._finish_job(batch, job, None, f"no proposal for the {job.shape.label} rectangle")

    def _on_failed(self, request_id: int, why: str) -> None:
        found = self._job(request_id)
        if found is None:
            return
        batch, job = found
        if batch.carry and job.prior is not None:  # the moved shape still saves the user's work
            self._trace(batch, job, job.prior, "carried", None)
        else:
            self._finish_job(batch, job, None, f"{job.shape.label}: {why}")

    def _trace(
        self, batch: _Batch, job: _Job, patch: MaskPatch, source: str, score: float | None
    ) -> None:
        def made(polygons: list[Polygon]) -> None:
            if not polygons:
                self._finish_job(batch, job, None, f"the {job.shape.label} mask is too small")
                return
            shape = job.shape
            flags = {k: v for k, v in shape.flags.items() if k != LOCKED_FLAG}
            new = Annotation(shape.label, tuple(polygons), score=score, source=source, flags=flags,
                             description=shape.description)  # fmt: skip
            self._finish_job(batch, job, new.for_review() if batch.carry else new, "")

        submit(self._pool, self._outline, patch, on_done=made,
               on_error=lambda exc: self._finish_job(batch, job, None, str(exc)))  # fmt: skip

    def _finish_job(self, batch: _Batch, job: _Job, made: Annotation | None, why: str) -> None:
        job.done, job.result = True, made
        if why:
            batch.failed.append(why)
        if batch is self._batch and all(j.done for j in batch.jobs.values()):
            self._batch = None
            self._apply(batch)

    def _apply(self, batch: _Batch) -> None:
        state = self._documents.get(batch.key)
        if state is None:
            return
        current = {a.id: a for a in state.doc.annotations}
        made: list[Annotation] = []
        for job in batch.jobs.values():
            if job.result is None:
                continue
            if batch.carry:
                made.append(job.result)
            elif current.get(job.shape.id) is job.shape:  # unchanged since it was asked about
                made.append(job.result.standing_in_for(job.shape))
        if made:
            what = f"Carry {len(made)} shape(s)" if batch.carry else "Rectangles to masks"
            with self._documents.macro(what, batch.key):
                for ann in made:
                    command = AddAnnotation(ann) if batch.carry else ReplaceAnnotation(ann, what)
                    self._documents.push(command, batch.key)
            if state is self._documents.current:
                self._annotator.select(made[0].id)
        self._report(batch, made)

    def _report(self, batch: _Batch, made: list[Annotation]) -> None:
        if batch.carry:
            moved = sum(a.source == "carried" for a in made)
            text = f"Carried {len(made)} shape(s) from {batch.origin}"
            if made:
                text += f": {len(made) - moved} fitted by the engine, {moved} moved as they were"
        else:
            text = f"{len(made)} rectangle(s) turned into masks"
        if batch.failed:
            text += "; not made: " + ", ".join(batch.failed[:3])
        self.message.emit(text + (". Review each with Y (keep) or N (reject)." if made else "."))

    def _stop(self, batch: _Batch, text: str) -> None:
        if batch is self._batch:
            self._batch = None
            self.message.emit(text)
