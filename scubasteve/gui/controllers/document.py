"""Open documents, their undo stacks, and autosave after every change.

Every edit is a core command (`scubasteve.core.commands`) wrapped in a QUndoCommand, so undo/redo
covers everything. After each change the document is written as LabelMe JSON on the save thread
(atomic write), so a crash loses at most the annotation in progress. A document whose annotation
file could not be read is read-only: that file is never overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.commands import Command
from scubasteve.gui.workers import submit

log = logging.getLogger(__name__)


@dataclass(eq=False)
class DocState:
    key: str
    doc: ImageDoc
    json_path: Path
    stack: QUndoStack
    problem: str | None = None  # why the annotation file could not be read (then read-only)
    hidden: set[str] = field(default_factory=set)
    requested: int = 0  # save generation asked for
    written: int = 0  # save generation on disk


class _UndoCommand(QUndoCommand):
    def __init__(self, owner: DocumentController, state: DocState, command: Command) -> None:
        super().__init__(command.text)
        self._owner, self._state, self._command = owner, state, command

    def redo(self) -> None:
        self._command.apply(self._state.doc)
        self._owner._changed(self._state)

    def undo(self) -> None:
        self._command.revert(self._state.doc)
        self._owner._changed(self._state)


def write_doc(doc: ImageDoc, json_path: Path) -> None:
    from scubasteve.io.labelme import write_labelme

    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_labelme(doc, json_path)


class DocumentController(QObject):
    changed = Signal(str)  # key of the document whose annotations changed
    save_state_changed = Signal(str)  # "saved", "saving" or "error: ..."
    message = Signal(str)

    def __init__(self, save_pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = save_pool
        self._states: dict[str, DocState] = {}
        self.undo_group = QUndoGroup(self)
        self.current: DocState | None = None
        self._macro_depth = 0
        self.save_errors = 0
        self._when_saved: list[Callable[[], None]] = []

    def get(self, key: str) -> DocState | None:
        return self._states.get(key)

    def all_docs(self) -> list[ImageDoc]:
        return [s.doc for s in self._states.values()]

    def problems(self) -> dict[str, str]:
        """Image path -> why its annotation file cannot be read, for the open documents."""
        return {str(s.doc.path): s.problem for s in self._states.values() if s.problem}

    def adopt(self, key: str, doc: ImageDoc, json_path: Path, problem: str | None) -> DocState:
        """Register a freshly loaded document, unless it is already open (then that one wins)."""
        state = self._states.get(key)
        if state is None:
            stack = QUndoStack(self.undo_group)
            state = DocState(key, doc, json_path, stack, problem)
            self._states[key] = state
        return state

    def activate(self, key: str | None) -> DocState | None:
        self.current = self._states.get(key) if key else None
        self.undo_group.setActiveStack(self.current.stack if self.current else None)
        return self.current

    # -- editing ------------------------------------------------------------------------------------

    def push(self, command: Command, key: str | None = None) -> bool:
        """Apply `command` to the document `key` (default: the current one) as an undoable step."""
        state = self._states.get(key) if key else self.current
        if state is None:
            return False
        if state.problem:
            self.message.emit(
                f"Not changed: {state.json_path.name} cannot be read, so this image is read-only "
                f"and the file is left untouched (the red banner says why)."
            )
            return False
        state.stack.push(_UndoCommand(self, state, command))
        return True

    @contextlib.contextmanager
    def macro(self, text: str, key: str | None = None) -> Iterator[None]:
        """Group several pushes into one undo step (and one save)."""
        state = self._states.get(key) if key else self.current
        if state is None:
            yield
            return
        state.stack.beginMacro(text)
        self._macro_depth += 1
        try:
            yield
        finally:
            self._macro_depth -= 1
            state.stack.endMacro()
            self._changed(state)

    def _changed(self, state: DocState) -> None:
        self.changed.emit(state.key)
        if self._macro_depth == 0:
            self.save(state)

    # -- saving -------------------------------------------------------------------------------------

    def save(self, state: DocState | None = None) -> None:
        state = state or self.current
        if state is None or state.problem:
            return
        state.requested += 1
        generation = state.requested
        snapshot = dataclasses.replace(state.doc, annotations=list(state.doc.annotations))
        self.save_state_changed.emit("saving")

        def done(_: object) -> None:
            state.written = max(state.written, generation)
            self._report()

        def failed(exc: BaseException) -> None:
            self.save_errors += 1
            self.save_state_changed.emit(f"error: {exc}")
            self.message.emit(f"Could not save the annotations: {exc}")

        submit(self._pool, write_doc, snapshot, state.json_path, on_done=done, on_error=failed)

    def _report(self) -> None:
        if all(s.written >= s.requested for s in self._states.values()):
            self.save_state_changed.emit("saved")
            waiting, self._when_saved = self._when_saved, []
            for callback in waiting:
                callback()

    def when_saved(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every change is on disk: now, or when the pending writes are done
        (the window never waits; after a failed write, when a later save succeeds)."""
        if self.unsaved:
            self._when_saved.append(callback)
        else:
            callback()

    @property
    def unsaved(self) -> bool:
        return any(s.written < s.requested for s in self._states.values())

    def flush(self, msecs: int = 10000) -> bool:
        """Wait for pending writes (on close)."""
        return self._pool.waitForDone(msecs)
