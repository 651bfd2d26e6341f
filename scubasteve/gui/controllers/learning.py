"""Learning from the user in the app: fine-tune IS-Net (or DeepMask) on the folder's accepted masks.

The work is `scubasteve.training.project.learn_from_project` (what `scubasteve train from-project`
runs): IS-Net when its weights are installed, DeepMask otherwise; hold out part of the annotated
images, measure, fine-tune on the rest, measure again, install the model only if it is not worse
than what the user has. The verdict and its before/after table go to `verdict` (the window shows
them in a dialog: a status-bar line is too easy to miss). It takes minutes, so it runs as a `Job` on its own
thread (`scubasteve.gui.workers.submit_job`): the trainer's progress and the verdict come back on the
GUI thread, and cancelling sets the job's `CancelToken`, which stops it at the next batch (or the
next measured object). Pre-annotations that were not accepted are not used.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.progress import Progress
from scubasteve.gui.controllers.document import DocumentController
from scubasteve.gui.workers import Job, make_pool, submit_job

log = logging.getLogger(__name__)

#: folder, keyword options (with ``progress=`` for `TrainProgress` and ``cancel=``) -> a report with
#: `installed`, `name`, `table()` and `verdict()`.
LearnFunction = Callable[..., Any]


def _learn_from_project(folder: Path, **options: Any) -> Any:
    from scubasteve.inference.device import resolve_device
    from scubasteve.training.project import learn_from_project

    options["device"] = resolve_device(options.get("device", "auto")).device  # auto -> cpu/cuda/mps
    return learn_from_project(folder, **options)


def _learn_counting_epochs(
    learn: Callable[..., Any], *, progress: Progress, cancel: CancelToken
) -> Any:
    """The job: `learn`, its trainer's steps reported as finished epochs (`progress(done, epochs)`)."""
    from scubasteve.training.progress import epochs_done

    return learn(progress=epochs_done(progress), cancel=cancel)


#: How the window names each learner.
LEARNER_NAMES = {"isnet": "IS-Net", "deepmask": "DeepMask"}


def learner_in_use(init: str | None = None) -> str:
    """The network that will learn: IS-Net when installed or when `init` is an IS-Net model, else
    DeepMask (cheap: reads the models registry, no weights)."""
    from scubasteve.training.project import learner_for

    try:
        return learner_for("auto", init)
    except Exception:  # an unreadable registry: the learning job will say why
        return "deepmask"


def model_name_for(folder: Path, init: str | None = None) -> str:
    """The new model's name: ``<learner>-<folder name>``."""
    from scubasteve.training.project import model_name_for as name_for

    return name_for(folder, learner_in_use(init))


class LearningController(QObject):
    progress = Signal(int, int)  # epochs done, epochs in the run
    running_changed = Signal(bool)
    message = Signal(str)
    model_installed = Signal(str)  # the new model's name: the engines should use it from now on
    finished = Signal(object)  # the report
    verdict = Signal(str, str)  # title, text: what the user must read (the window shows a dialog)

    def __init__(
        self, learn: LearnFunction | None = None, parent: QObject | None = None, epochs: int = 5
    ) -> None:
        super().__init__(parent)
        self._learn = learn or _learn_from_project
        self._pool = make_pool("long")
        self._job: Job | None = None
        self.epochs = epochs
        self.running = False
        self._saving = False  # waiting for the folder's last changes to be written

    def toggle(
        self, folder: Path | None, documents: DocumentController, *, init: str | None, device: str
    ) -> None:
        """The action: learn from `folder` once its annotations are all written (the window does
        not wait for that), or cancel the run in progress."""
        if self.running:
            self.cancel()
        elif folder is None:
            self.message.emit("Open a folder first.")
        elif not self._saving:
            self._saving = True

            def saved() -> None:
                self._saving = False
                self.start(folder, init=init, device=device)

            if documents.unsaved:
                self.message.emit("Learning starts once the annotations are saved…")
            documents.when_saved(saved)

    def start(
        self, folder: Path, *, init: str | None, device: str, name: str | None = None
    ) -> None:
        """Fine-tune on `folder`'s LabelMe files, starting from `init` (None: the default model)."""
        if self.running:
            self.message.emit("Already learning from this folder.")
            return
        self._set_running(True)
        from scubasteve.training.project import model_name_for as name_for

        learner = learner_in_use(init)  # read once: it looks at the models registry
        name = name or name_for(folder, learner)
        self.progress.emit(0, self.epochs)
        self.message.emit(
            f"{LEARNER_NAMES[learner]} is learning from the accepted annotations in {folder.name} ({self.epochs} epochs; "
            "proposals are slower meanwhile). The same action cancels."
        )

        learn = functools.partial(
            self._learn, folder, init=init, name=name, epochs=self.epochs, device=device
        )
        self._job = submit_job(
            self._pool,
            _learn_counting_epochs,
            learn,
            on_done=self._done,
            on_error=self._failed,
            on_progress=self.progress.emit,
        )

    def cancel(self) -> None:
        if self.running and self._job is not None:
            self._job.cancel()
            self.message.emit("Cancelling the learning…")

    def wait(self, msecs: int) -> bool:
        return self._pool.waitForDone(msecs)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.running_changed.emit(running)

    def _done(self, report: Any) -> None:
        self._set_running(False)
        verdict = report.verdict()
        self.message.emit(f"Learning: {verdict}")
        log.info("learning from the project:\n%s", report.table())
        self.verdict.emit("Learning from this folder", f"{verdict}\n\n{report.table()}")
        if report.installed is not None:
            # Installed only when not worse than what the user has; from now on it is used.
            self.model_installed.emit(report.name)
        self.finished.emit(report)

    def _failed(self, exc: BaseException) -> None:
        self._set_running(False)
        if isinstance(exc, Cancelled):
            self.message.emit("Learning cancelled; nothing was installed.")
        else:
            text = f"Could not learn from this folder: {exc}"
            self.message.emit(text)
            self.verdict.emit("Learning from this folder", text)
