"""PixelLib pre-annotation of the current image or the whole folder, and review of its results.

The segmenter keeps TensorFlow on its own thread (`segment_async` returns a Future); `workers.watch`
delivers each result on the GUI thread. A run has a `CancelToken`: cancelling stops it after the
image being segmented (TensorFlow cannot be interrupted mid-image). Pre-annotations carry the `needs_review` flag until the user
accepts (Y) or rejects (N) them. For images that are not open, results are merged into their LabelMe
file on a worker; a file that cannot be read is skipped and never overwritten.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import REVIEW_FLAG
from scubasteve.core.cancel import CancelToken
from scubasteve.core.commands import AddAnnotation, DeleteAnnotation, ReplaceAnnotation
from scubasteve.gui.controllers.document import DocumentController
from scubasteve.gui.controllers.engine_host import is_weights_missing
from scubasteve.gui.workers import submit, watch
from scubasteve.inference.preannotation import mark_for_review, merge_into_file

log = logging.getLogger(__name__)

SegmenterFactory = Callable[[], Any]  # returns an object with segment_async(image) -> Future


class PreannotateController(QObject):
    progress = Signal(int, int)  # images done, images in the run
    running_changed = Signal(bool)
    message = Signal(str)
    weights_missing = Signal(str)
    file_updated = Signal(object)  # Path of an image whose file got pre-annotations

    def __init__(
        self,
        pool: QThreadPool,
        documents: DocumentController,
        json_path_for: Callable[[Path], Path],
        segmenter_factory: SegmenterFactory,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._documents = documents
        self._json_path_for = json_path_for
        self._factory = segmenter_factory
        self._segmenter: Any = None
        self._queue: list[Path] = []
        self._total = 0
        self._done = 0
        self._cancel = CancelToken()
        self.running = False

    def set_factory(self, factory: SegmenterFactory) -> None:
        """Use a new segmenter (settings changed); the old one is dropped after any running job."""
        self._factory, self._segmenter = factory, None

    # -- running ------------------------------------------------------------------------------------

    def run(self, images: Sequence[Path]) -> None:
        """Pre-annotate `images` one after another (open documents get undoable additions)."""
        if self.running:
            self.message.emit("Pre-annotation is already running.")
            return
        self._queue, self._total, self._done = list(images), len(images), 0
        self._cancel = CancelToken()
        self._set_running(True)
        self.progress.emit(0, self._total)
        if self._segmenter is None:
            submit(
                self._pool,
                self._factory,
                on_done=self._segmenter_ready,
                on_error=self._segmenter_failed,
            )
        else:
            self._next()

    def cancel(self) -> None:
        if self.running:
            self._cancel.cancel()
            self.message.emit("Cancelling pre-annotation after the current image…")

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.running_changed.emit(running)

    def _segmenter_ready(self, segmenter: Any) -> None:
        self._segmenter = segmenter
        self._next()

    def _segmenter_failed(self, exc: BaseException) -> None:
        self._set_running(False)
        if is_weights_missing(exc):
            self.weights_missing.emit(str(exc))
        self.message.emit(f"Pre-annotation is not available: {exc}")

    def _next(self) -> None:
        if self._cancel.cancelled or not self._queue:
            self._set_running(False)
            what = "cancelled" if self._cancel.cancelled else "finished"
            self.message.emit(f"Pre-annotation {what}: {self._done} of {self._total} image(s).")
            return
        path = self._queue.pop(0)
        from scubasteve.io.images import load_image

        submit(self._pool, load_image, path, on_done=lambda rgb: self._segment(path, rgb),
               on_error=lambda exc: self._skip(path, exc))  # fmt: skip

    def _segment(self, path: Path, rgb: Any) -> None:
        try:
            future = self._segmenter.segment_async(rgb)
        except Exception as exc:
            self._skip(path, exc)
            return
        watch(
            future,
            on_done=lambda result: self._segmented(path, result),
            on_error=lambda exc: self._skip(path, exc),
        )

    def _segmented(self, path: Path, result: Any) -> None:
        found = mark_for_review(result or [])
        state = self._documents.get(str(path))
        if state is not None:
            if found and not state.problem:
                with self._documents.macro(f"Pre-annotate ({len(found)})", state.key):
                    for ann in found:
                        self._documents.push(AddAnnotation(ann), state.key)
            elif state.problem:
                self.message.emit(f"Skipped {path.name}: its annotation file cannot be read.")
            self._advance(path)
            return
        if not found:
            self._advance(path)
            return
        submit(self._pool, merge_into_file, path, self._json_path_for(path), found,
               on_done=lambda _n: self._advance(path, updated=True),
               on_error=lambda e: self._skip(path, e))  # fmt: skip

    def _advance(self, path: Path, updated: bool = False) -> None:
        self._done += 1
        self.progress.emit(self._done, self._total)
        if updated:
            self.file_updated.emit(path)
        self._next()

    def _skip(self, path: Path, exc: BaseException) -> None:
        self.message.emit(f"Pre-annotation skipped {path.name}: {exc}")
        self._advance(path)

    # -- review -------------------------------------------------------------------------------------

    def review(self, accept: bool, selected: str | None) -> str | None:
        """Accept or reject one pre-annotation (the selected one if pending, else the first).

        Returns the id of the next one awaiting review, or None when all are reviewed.
        """
        state = self._documents.current
        if state is None:
            return None
        pending = [a for a in state.doc.annotations if a.flags.get(REVIEW_FLAG)]
        if not pending:
            self.message.emit("No pre-annotations to review on this image.")
            return None
        target = next((a for a in pending if a.id == selected), pending[0])
        if accept:
            flags = {k: v for k, v in target.flags.items() if k != REVIEW_FLAG}
            self._documents.push(
                ReplaceAnnotation(
                    dataclasses.replace(target, flags=flags), text="Accept pre-annotation"
                )
            )
        else:
            self._documents.push(DeleteAnnotation(target.id, text="Reject pre-annotation"))
        rest = [a for a in pending if a.id != target.id]
        return rest[0].id if rest else None
