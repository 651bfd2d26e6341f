"""The open folder: scanning it on a worker, the image list, and moving between images.

Images that cannot be decoded are marked unreadable, reported, and skipped in the direction the
user was going. The scan only lists the files (a 20,000-image folder opens at once), so an image
with an annotation file starts as done; right after it every existing annotation file is read once
on a worker, which gives each image its state from its file (`core.annotation.doc_state`: to do,
in progress, to review, done) without opening it in the window, or marks it "problem" when its file
cannot be read (read-only, not counted as done).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import ImageDoc, ImageState, doc_state
from scubasteve.core.project import Project
from scubasteve.core.settings import Settings
from scubasteve.gui.controllers.document import DocumentController
from scubasteve.gui.controllers.images import ImageLoader, LoadedImage, file_states
from scubasteve.gui.image_list import NEEDS_USER, ImageListModel, RowState
from scubasteve.gui.workers import submit

#: The folder's files read within this many seconds of opening it may still change the image
#: shown first (to the first that needs the user); later the user may have started work.
REOPEN_GRACE_S = 1.5


@dataclass
class ScanResult:
    project: Project
    names: list[str]
    states: list[RowState]


def scan_folder(folder: Path, output_folder: str) -> ScanResult:
    """Open the project and find which images already have an annotation file (one listing per folder)."""
    project = Project.open(folder, annotation_dir=output_folder or None)
    json_names: dict[Path, set[str]] = {}
    states: list[RowState] = []
    names: list[str] = []
    for image in project.images:
        target = project.annotation_path(image)
        present = json_names.get(target.parent)
        if present is None:
            try:
                with os.scandir(target.parent) as entries:
                    present = {e.name for e in entries if e.name.endswith(".json")}
            except OSError:
                present = set()
            json_names[target.parent] = present
        states.append(RowState.DONE if target.name in present else RowState.TODO)
        try:
            names.append(str(image.relative_to(project.root)))
        except ValueError:
            names.append(image.name)
    return ScanResult(project, names, states)


class ProjectController(QObject):
    opened = Signal(object)  # Project
    open_failed = Signal(str)
    image_shown = Signal(object)  # LoadedImage
    current_row_changed = Signal(int)
    message = Signal(str)
    exported = Signal(object)  # ExportSummary
    times_read = Signal(object, object)  # the folder's LabelTiming total, per-label rows
    export_failed = Signal(str)

    def __init__(self, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self.project: Project | None = None
        self.model = ImageListModel()
        self.loader = ImageLoader(pool, self.annotation_path)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self.row = -1
        self._marked: set[int] = set()  # rows whose state the window set since the scan
        self._wanted = -1  # the row whose image is being loaded to be shown
        self._opened_at: int | None = None  # the row the folder opened on, until the user moves
        self._opened_time = 0.0
        self._direction = 1
        self.output_folder = ""

    @property
    def annotation_folder(self) -> Path | None:
        """Where the open folder's LabelMe files are (None when no folder is open)."""
        if self.project is None:
            return None
        return self.project.annotation_dir or self.project.root

    def annotation_path(self, image: Path) -> Path:
        """Where `image`'s LabelMe file is (beside it, or in the output folder)."""
        if self.project is None:
            return image.with_suffix(".json")
        return self.project.annotation_path(image)

    def open_folder(self, folder: Path) -> None:
        submit(
            self._pool,
            scan_folder,
            Path(folder),
            self.output_folder,
            on_done=self._scanned,
            on_error=lambda exc: self.open_failed.emit(str(exc)),
            priority=2,
        )

    def _scanned(self, result: ScanResult) -> None:
        self.project = result.project
        self.loader.clear()
        self.row = self._wanted = -1
        self._marked = set()
        self.model.reset(list(result.project.images), result.names, result.states)
        self.opened.emit(result.project)
        if not result.project.images:
            self.message.emit(f"No images in {result.project.root}.")
            return
        first = self.model.find(-1, 1, NEEDS_USER)
        self.go(first if first >= 0 else 0)
        # Chosen from the scan; the files, read next, may show an earlier image that needs the
        # user (in progress, to review): shown instead if they are read before work can start.
        self._opened_at, self._opened_time = self._wanted, time.monotonic()
        project = result.project
        files = [
            (row, project.annotation_path(image))
            for row, image in enumerate(project.images)
            if result.states[row] == RowState.DONE
        ]
        if files:
            submit(self._pool, file_states, files,
                   on_done=lambda found, p=project: self._states_read(p, found))  # fmt: skip

    def _states_read(
        self, project: Project, found: list[tuple[int, ImageState | None, str]]
    ) -> None:
        if project is not self.project:
            return  # another folder was opened meanwhile
        problems = 0
        for row, state, why in found:
            if state is None:
                problems += 1
                self.model.set_state(row, RowState.PROBLEM, why)
            elif row not in self._marked:  # the window's own marks are newer
                self.model.set_state(row, RowState.of(state))
        if problems:
            self.message.emit(
                f"{problems} annotation file(s) cannot be read; those images are read-only."
            )
        opened, self._opened_at = self._opened_at, None
        first = self.model.find(-1, 1, NEEDS_USER)
        quick = time.monotonic() - self._opened_time < REOPEN_GRACE_S
        if opened is not None and quick and first >= 0 and first != opened:
            self.go(first)

    # -- navigation ---------------------------------------------------------------------------------

    def go(self, row: int, direction: int = 1) -> None:
        self._opened_at = None  # the user (or the opening) chose: no later jump
        if not 0 <= row < self.model.rowCount():
            return
        self._wanted, self._direction = row, direction
        self.current_row_changed.emit(row)
        self.loader.request(self.model.path(row), show=True)

    def step(self, step: int) -> None:
        base = self._wanted if self._wanted >= 0 else self.row
        row = base + step
        while 0 <= row < self.model.rowCount() and self.model.state(row) == RowState.UNREADABLE:
            row += step
        if 0 <= row < self.model.rowCount():
            self.go(row, step)

    def next_todo(self) -> None:
        """Go to the next image that needs the user (to do, in progress, to review), from the top
        again after the last one."""
        current = max(self.row, self._wanted)
        row = self.model.find(current, 1, NEEDS_USER)
        if row < 0:
            row = self.model.find(-1, 1, NEEDS_USER)
        if row < 0:
            self.message.emit("Every image is done.")
        elif row == current:
            self.message.emit(
                f"No other image needs you; this one is {self.model.state(row).text}."
            )
        else:
            self.go(row)

    def _on_loaded(self, entry: LoadedImage) -> None:
        # Only the image wanted now is shown: a load asked for earlier that ends after the user
        # has moved on (and the wanted image came from the cache) is not.
        row = self._wanted if self._wanted >= 0 else self.row
        if row < 0 or self.model.path(row) != entry.path:
            return
        self.row, self._wanted = row, -1
        if entry.problem:
            self.model.set_state(row, RowState.PROBLEM, entry.problem)
        self.image_shown.emit(entry)
        nxt = row + self._direction
        if 0 <= nxt < self.model.rowCount() and self.model.state(nxt) != RowState.UNREADABLE:
            self.loader.request(self.model.path(nxt), show=False)

    def _on_failed(self, path: Path, message: str) -> None:
        row = self.model.row_of(path)
        if row < 0:
            return
        self.model.set_state(row, RowState.UNREADABLE, message)
        self.message.emit(f"Skipped an unreadable image: {message}")
        if row == self._wanted:
            self._wanted = -1
            nxt = self.model.find(
                row, self._direction, tuple(s for s in RowState if s != RowState.UNREADABLE)
            )
            if nxt >= 0:
                self.go(nxt, self._direction)

    def follow(self, documents: DocumentController) -> None:
        """Keep each open document's row in step with it (every change, undo included)."""

        def changed(key: str) -> None:
            state = documents.get(key)
            if state is not None and not state.problem:
                self.show_state(state.doc)

        def shown(entry: LoadedImage) -> None:  # its row as its file says (the scan saw only it)
            state = documents.get(entry.key)  # an open document is newer than its file
            if not entry.problem and (state is None or not state.problem):
                self.show_state(state.doc if state is not None else entry.doc)

        documents.changed.connect(changed)
        self.image_shown.connect(shown)

    def show_state(self, doc: ImageDoc) -> None:
        """Show `doc`'s image in the list as `core.annotation.doc_state` says."""
        self.mark(doc.path, RowState.of(doc_state(doc)))

    def apply_settings(self, new: Settings, old: Settings) -> None:
        """Another output folder: the open folder is listed again (its files are elsewhere)."""
        self.output_folder = new.output_folder
        if new.output_folder != old.output_folder and self.project is not None:
            self.open_folder(self.project.root)

    def mark(self, path: Path, state: RowState, message: str = "") -> None:
        """Set the state of `path`'s row (not of an unreadable image or a read-only file)."""
        row = self.model.row_of(path)
        if row >= 0 and self.model.state(row) not in (RowState.UNREADABLE, RowState.PROBLEM):
            self._marked.add(row)
            self.model.set_state(row, state, message)

    def previous_image(self, path: Path) -> Path | None:
        """The readable image before `path` in the list (None for the first)."""
        row = self.model.row_of(path)
        prev = self.model.find(row, -1, tuple(s for s in RowState if s != RowState.UNREADABLE))
        return self.model.path(prev) if row >= 0 and prev >= 0 else None

    def images_in(self, states: tuple[RowState, ...]) -> list[Path]:
        """The folder's images whose row is in one of `states`, in list order."""
        model = self.model
        return [model.path(r) for r in range(model.rowCount()) if model.state(r) in states]

    def read_times(self) -> None:
        """Per-label times from every annotation file of the folder, read on a worker."""
        from scubasteve.gui.stats import recorded_times, timings_of

        if self.project is None:
            return
        paths = [self.project.annotation_path(image) for image in self.project.images]
        submit(
            self._pool,
            lambda: timings_of(recorded_times(p for p in paths if p.is_file())),
            on_done=lambda r: self.times_read.emit(*r),
            on_error=lambda exc: self.message.emit(f"Could not read the times: {exc}"),
        )

    def export_coco(self, path: Path, documents: DocumentController) -> None:
        """Write the folder's accepted annotations to a COCO file on a worker (`exported` when
        done); open documents as edited, those whose file cannot be read left out."""
        project = self.project
        if project is None:
            return
        unreadable = documents.problems()
        open_docs = {str(d.path): d for d in documents.all_docs() if str(d.path) not in unreadable}
        from scubasteve.io.project_export import export_project_coco

        self.message.emit("Exporting COCO…")
        submit(
            self._pool,
            lambda: export_project_coco(project, path, open_docs, set(unreadable)),
            on_done=self.exported.emit,
            on_error=lambda exc: self.export_failed.emit(f"Export failed: {exc}"),
        )
