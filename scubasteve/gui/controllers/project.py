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
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import ImageDoc, ImageState
from scubasteve.core.project import Project
from scubasteve.gui.controllers.images import ImageLoader, LoadedImage, file_states
from scubasteve.gui.image_list import NEEDS_USER, ImageListModel, RowState
from scubasteve.gui.workers import submit


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
        self._direction = 1
        self.output_folder = ""

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

    # -- navigation ---------------------------------------------------------------------------------

    def go(self, row: int, direction: int = 1) -> None:
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
        row = self.model.row_of(entry.path) if self._wanted < 0 else self._wanted
        if row < 0 or self.model.path(row) != entry.path:
            return  # an older request; the user has moved on
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

    def export_coco(
        self, path: Path, open_docs: Mapping[str, ImageDoc], unreadable: Collection[str]
    ) -> None:
        """Write the folder's accepted annotations to a COCO file on a worker (`exported` when done)."""
        project = self.project
        if project is None:
            return
        from scubasteve.io.project_export import export_project_coco

        self.message.emit("Exporting COCO…")
        submit(
            self._pool,
            lambda: export_project_coco(project, path, open_docs, set(unreadable)),
            on_done=self.exported.emit,
            on_error=lambda exc: self.export_failed.emit(f"Export failed: {exc}"),
        )
