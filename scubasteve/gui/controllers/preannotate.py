"""PixelLib pre-annotation of the current image or the whole folder.

A run is `inference.preannotation.annotate_images`, the loop `scubasteve annotate` runs too, as one
background job (`workers.submit_job`): it builds the segmenter on first use, detects each image on
the segmenter's TensorFlow thread and writes the files of images that are not open, with the run
marker and the review flag. Images open in the window are held: their results come back on the GUI
thread and are added to the document as one undoable step (which saves it). Cancel sets the job's
`CancelToken`: the image being segmented is finished (TensorFlow cannot be interrupted inside an
image, or between the tiles of a large image), nothing after it is written. A file that cannot be
read is skipped and never overwritten. Large images are tiled ("auto", `maskrcnn/tiling.py`), with
progress per tile.
Pre-annotations carry the `needs_review` flag until the user accepts (Y) or rejects (N) them
(`AnnotatorController.review`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.commands import AddAnnotation, DeleteAnnotation
from scubasteve.core.progress import Progress
from scubasteve.core.settings import Settings
from scubasteve.gui.controllers.document import DocState, DocumentController
from scubasteve.gui.controllers.engine_host import is_weights_missing
from scubasteve.gui.controllers.images import LoadedImage
from scubasteve.gui.controllers.project import ProjectController
from scubasteve.gui.image_list import NEEDS_USER, RowState
from scubasteve.gui.workers import Job, make_pool, on_gui_thread, submit_job
from scubasteve.inference.preannotation import (
    RUN_KEY,
    AnnotateSummary,
    ImageCallback,
    ImageOutcome,
    ImageResult,
    annotate_images,
    changes,
    run_info,
)

log = logging.getLogger(__name__)

#: Makes the segmenter (`InstanceSegmenter`, or a test's stand-in); called on a worker.
SegmenterFactory = Callable[[], Any]

#: The settings the segmenter is made from.
SEGMENTER_SETTINGS = ("pixellib_model", "pixellib_speed", "pixellib_min_score", "device")


def segmenter_factory(settings: Settings) -> SegmenterFactory:
    """PixelLib's Mask R-CNN as the settings describe it (made on first use, on a worker)."""

    def make() -> Any:
        from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter

        return InstanceSegmenter(
            settings.pixellib_model,
            speed=settings.pixellib_speed,
            min_score=settings.pixellib_min_score,
            device="cpu" if settings.device == "cpu" else "auto",
        )

    return make


def preannotate(
    factory: SegmenterFactory,
    slot: list[Any],
    todo: list[tuple[Path, Path]],
    held: Callable[[Path], bool],
    on_image: ImageCallback,
    view_progress: Progress | None = None,
    *,
    progress: Progress,
    cancel: CancelToken,
) -> AnnotateSummary:
    """The job: the segmenter (`slot` keeps it for the next run), then the images of `todo`
    (large ones tiled: `view_progress(done, views)` per tile)."""
    if not slot:
        slot.append(factory())
    segmenter = slot[0]
    return annotate_images(
        todo, segmenter, run_info=run_info(segmenter), held=held, cancel=cancel,
        progress=progress, view_progress=view_progress, on_image=on_image,
    )  # fmt: skip


class PreannotateController(QObject):
    progress = Signal(int, int)  # images done, images in the run
    view_progress = Signal(int, int)  # views (tiles) of the current large image done, its views
    running_changed = Signal(bool)
    message = Signal(str)
    weights_missing = Signal(str)
    file_updated = Signal(object, object)  # image Path, the ImageDoc the run wrote for it

    def __init__(
        self,
        documents: DocumentController,
        json_path_for: Callable[[Path], Path],
        settings: Settings,
        factory: SegmenterFactory | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = make_pool("long")
        self._documents = documents
        self._json_path_for = json_path_for
        self._factory = factory or segmenter_factory(settings)
        self._slot: list[Any] = []  # the segmenter, once made
        self._job: Job | None = None
        self._total = 0
        self._done = 0
        self.running = False

    def set_factory(self, factory: SegmenterFactory) -> None:
        """Use a new segmenter (settings changed); the old one is dropped after any running job."""
        self._factory, self._slot = factory, []

    def apply_settings(self, new: Settings, old: Settings) -> None:
        if any(getattr(new, k) != getattr(old, k) for k in SEGMENTER_SETTINGS):
            self.set_factory(segmenter_factory(new))

    # -- running ------------------------------------------------------------------------------------

    def run(self, images: Sequence[Path]) -> None:
        """Pre-annotate `images` one after another (open documents get undoable additions)."""
        if self.running:
            self.message.emit("Pre-annotation is already running.")
            return
        todo = [(path, self._json_path_for(path)) for path in images]
        self._total, self._done = len(todo), 0
        self._set_running(True)
        self.progress.emit(0, self._total)
        self._job = submit_job(
            self._pool, preannotate, self._factory, self._slot, todo, self._is_open,
            on_gui_thread(self._image_done), on_gui_thread(self.view_progress.emit),
            on_done=self._finished, on_error=self._failed, on_progress=self._progressed,
        )  # fmt: skip

    def run_image(self, entry: LoadedImage | None) -> None:
        """Pre-annotate the image shown."""
        if entry is None:
            self.message.emit("Open a folder first.")
        else:
            self.run([entry.path])

    def run_folder(self, project: ProjectController, skip_done: bool) -> None:
        """Pre-annotate the folder's images: those to do, or (`skip_done` off) every image that
        can be read and written."""
        if project.project is None:
            self.message.emit("Open a folder first.")
            return
        rows = (RowState.TODO,) if skip_done else (RowState.TODO, *NEEDS_USER, RowState.DONE)
        self.run(project.images_in(tuple(dict.fromkeys(rows))))

    def cancel(self) -> None:
        if self.running and self._job is not None:
            self._job.cancel()
            self.message.emit("Cancelling pre-annotation after the current image or tile…")

    def wait(self, msecs: int) -> bool:
        """Block until the running job has ended (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    def _is_open(self, image: Path) -> bool:
        # Called on the job's thread: a dict lookup, safe beside the GUI thread's changes.
        return self._documents.get(str(image)) is not None

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.running_changed.emit(running)

    def _progressed(self, done: int, total: int) -> None:
        self._done = done
        self.progress.emit(done, total)

    def _image_done(self, outcome: ImageOutcome) -> None:
        if outcome.problem:
            self.message.emit(f"Pre-annotation skipped {outcome.image.name}: {outcome.problem}")
            return
        state = self._documents.get(str(outcome.image))
        if outcome.doc is None:  # held: the image is open
            if state is not None and outcome.result is not None:
                self._add_to_document(state, outcome.result, outcome.record)
            return
        if state is not None and state.doc.extra.get(RUN_KEY) != outcome.record:
            # Opened while its file was being written: the document holds the file before the
            # run, and saving it would drop the run's shapes, so they go into the document too.
            self._add_to_document(state, outcome.result or ImageResult([], (0, 0)), outcome.record)
        self.file_updated.emit(outcome.image, outcome.doc)

    def _add_to_document(self, state: DocState, result: ImageResult, record: dict) -> None:
        if state.problem:
            self.message.emit(f"Skipped {state.doc.path.name}: its annotation file cannot be read.")
            return
        stale, added = changes(state.doc, result)
        state.doc.extra[RUN_KEY] = record
        if not stale and not added:
            return
        with self._documents.macro(f"Pre-annotate ({len(added)})", state.key):
            for annotation_id in stale:
                self._documents.push(DeleteAnnotation(annotation_id), state.key)
            for annotation in added:
                self._documents.push(AddAnnotation(annotation), state.key)

    def _finished(self, summary: AnnotateSummary) -> None:
        self._job = None
        self._set_running(False)
        self.message.emit(f"Pre-annotation finished: {self._done} of {self._total} image(s).")

    def _failed(self, exc: BaseException) -> None:
        self._job = None
        self._set_running(False)
        if isinstance(exc, Cancelled):
            self.message.emit(f"Pre-annotation cancelled: {self._done} of {self._total} image(s).")
            return
        if is_weights_missing(exc):
            self.weights_missing.emit(str(exc))
        self.message.emit(f"Pre-annotation is not available: {exc}")
