"""The main window: builds the parts and wires their signals. Behaviour lives in the controllers."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
)

from scubasteve.core.geometry import polygons_bounds
from scubasteve.core.settings import Settings, save_settings
from scubasteve.gui.actions import LABEL_KEYS, SPECS, ActionRegistry
from scubasteve.gui.canvas.scene import CanvasScene
from scubasteve.gui.controllers.annotator import AnnotatorController
from scubasteve.gui.controllers.document import DocumentController
from scubasteve.gui.controllers.engine_host import (
    RECOMMENDED_MODEL,
    EngineHost,
    EngineInfo,
    ProposerFactory,
    default_factory,
)
from scubasteve.gui.controllers.learning import LearningController
from scubasteve.gui.controllers.messages import Messages, device_fallback
from scubasteve.gui.controllers.preannotate import PreannotateController, SegmenterFactory
from scubasteve.gui.controllers.project import ProjectController
from scubasteve.gui.controllers.proposals import ProposalController
from scubasteve.gui.controllers.shapes import ShapeController
from scubasteve.gui.image_list import RowState, doc_row_state
from scubasteve.gui.menus import build_menus, build_toolbar
from scubasteve.gui.tools.base import ToolContext
from scubasteve.gui.tools.box_tool import BoxTool
from scubasteve.gui.tools.brush_tool import BrushTool
from scubasteve.gui.tools.polygon_tool import PolygonTool
from scubasteve.gui.tools.vertex_tool import VertexTool
from scubasteve.gui.views.label_picker import picker_anchor
from scubasteve.gui.views.panels import (
    PREANNOTATE_TEXT,
)
from scubasteve.gui.views.start_page import remember_folder
from scubasteve.gui.views.window_layout import build_views
from scubasteve.gui.workers import make_pool, prepare_worker_imports, submit
from scubasteve.inference.base import MaskProposer
from scubasteve.io.project_export import default_export_path

log = logging.getLogger(__name__)

PROPOSAL_ACTIONS = (
    "accept",
    "discard",
    "next_proposal",
    "prev_proposal",
    *(f"pick_{n}" for n in range(1, 11)),
)


def default_segmenter_factory(settings: Settings) -> SegmenterFactory:
    def make():  # type: ignore[no-untyped-def]
        from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter

        return InstanceSegmenter(
            settings.pixellib_model,
            speed=settings.pixellib_speed,
            min_score=settings.pixellib_min_score,
            device="cpu" if settings.device == "cpu" else "auto",
        )

    return make


class MainWindow(QMainWindow):
    first_shown = Signal()

    def __init__(
        self,
        settings: Settings,
        proposer_factory: ProposerFactory | None = None,
        segmenter_factory: SegmenterFactory | None = None,
        save_settings_on_close: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Scuba Steve")
        self.settings = settings
        self._save_settings_on_close = save_settings_on_close
        self._shown_once = False
        self.closed_cleanly = False  # everything saved on close: the process may end at once
        self.pool = make_pool(2, "work")
        self.save_pool = make_pool(1, "save")

        # controllers
        self.engine = EngineHost(proposer_factory or self._default_proposer, self)
        self.proposals = ProposalController(self.engine, self.pool, self)
        self.proposals.k = settings.proposals
        self.proposals.tolerance = settings.polygon_tolerance
        self.proposals.min_island = settings.min_island_area
        self.documents = DocumentController(self.save_pool, self)
        self.project = ProjectController(self.pool, self)
        self.project.output_folder = settings.output_folder
        self.project.loader.preloaded.connect(lambda e: self.engine.prefetch(e.key, e.rgb))
        self.scene = CanvasScene()
        self.scene.instance_colors = settings.instance_colors
        self.annotator = AnnotatorController(self.scene, self.documents, self.proposals, self)
        self.shapes = ShapeController(
            self.documents, self.annotator, self.pool, lambda: self.settings.polygon_tolerance,
            lambda: self.settings.min_island_area, self,
        )  # fmt: skip
        self.learning = LearningController(parent=self)
        self.preannotate = PreannotateController(
            self.pool, self.documents, self.project._json_path,
            segmenter_factory or default_segmenter_factory(settings), self,
        )  # fmt: skip

        # views
        v = build_views(self, self.scene, self.project.model, settings.recent_folders)
        self.views = v
        self.view, self.banner, self.notice, self.strip = v.view, v.banner, v.notice, v.strip
        self.start_page, self.pages, self.docks = v.start_page, v.pages, v.docks
        self.images_panel, self.annotations_panel = v.images_panel, v.annotations_panel
        self.preannotate_panel, self.stats_panel = v.preannotate_panel, v.stats_panel
        self.status, self.label_picker = v.status, v.label_picker
        self.messages = Messages(self.status, self.notice, self)

        # tools
        ctx = ToolContext(
            scene=self.scene, view=self.view, proposals=self.proposals, documents=self.documents,
            label=lambda: self.annotator.label, selected=lambda: self.annotator.selected,
            select=self.annotator.select, toggle_select=self.annotator.toggle_in_selection,
            locked=self.annotator.refuse_locked, tolerance=lambda: self.settings.polygon_tolerance,
            min_island=lambda: self.settings.min_island_area,
        )  # fmt: skip
        self.tools = {
            "box": BoxTool(ctx),
            "polygon": PolygonTool(ctx),
            "edit": VertexTool(ctx),
            "brush": BrushTool(ctx, self.pool),
            "eraser": BrushTool(ctx, self.pool, erase=True),
        }
        self.tool_name = ""
        self._relabel = False  # whether the label picker relabels the selection or sets the label
        for tool in self.tools.values():
            tool.message.connect(self.show_message)
            tool.notice.connect(lambda text: self.messages.error(text, self._image_key()))

        self.actions = ActionRegistry(self)
        self._report_clashes(self.actions.apply_shortcuts(settings.shortcuts))
        self._bind_actions()
        build_menus(self, self.actions)
        self.label_button = build_toolbar(self, self.actions)
        self.label_button.clicked.connect(self.open_label_picker)
        self._connect()
        self.set_tool("box")
        self.actions.set_enabled(PROPOSAL_ACTIONS, False)
        self.resize(1400, 900)

    # -- wiring -------------------------------------------------------------------------------------

    def _bind_actions(self) -> None:
        """What each action of the table (`gui.actions.ACTIONS`) does: the owner's method."""
        on, p, a = self.actions.on, self.proposals, self.annotator
        on("open_folder", self.open_folder_dialog)
        on("save", lambda: self.documents.save())
        on("export_coco", self.export_coco_dialog)
        on("settings", self.open_settings)
        on("weights", lambda: self.offer_weights(""))
        on("quit", self.close)
        on("undo", self.undo)
        on("redo", self.documents.undo_group.redo)
        on("pick_label", self.open_label_picker)
        on("relabel", lambda: self.open_label_picker(relabel=True))
        on("delete", a.delete_selected)
        on("hide", a.toggle_selected_hidden)
        on("hide_all", a.toggle_all_hidden)
        on("finish_image", a.toggle_finished)
        on("merge", self.shapes.merge)
        on("subtract", self.shapes.subtract)
        on("lock", self.shapes.toggle_lock)
        on("simpler", self.shapes.simpler)
        on("finer", self.shapes.finer)
        for n in range(1, LABEL_KEYS + 1):
            on(f"label_{n}", lambda n=n: a.use_label_key(n))
        for name in ("box", "polygon", "edit", "brush", "eraser"):
            on(f"tool_{name}", lambda name=name: self.set_tool(name))
        on("brush_bigger", lambda: self._resize_brush(1.25))
        on("brush_smaller", lambda: self._resize_brush(0.8))
        on("accept", p.accept)
        on("discard", p.discard)
        on("next_proposal", lambda: p.cycle(1))
        on("prev_proposal", lambda: p.cycle(-1))
        for n in range(1, 11):
            on(f"pick_{n}", lambda n=n: p.pick(n - 1))
        on("next_image", lambda: self.project.step(1))
        on("prev_image", lambda: self.project.step(-1))
        on("next_todo", self.project.next_todo)
        on("fit", self.view.fit)
        on("actual_size", self.view.actual_size)
        on("zoom_in", lambda: self.view.zoom_by(1.25))
        on("zoom_out", lambda: self.view.zoom_by(0.8))
        on("preannotate_image", lambda: self._preannotate(folder=False))
        on("preannotate_folder", lambda: self._preannotate(folder=True))
        on("review_accept", lambda: self.review(True))
        on("review_reject", lambda: self.review(False))
        on("learn", self.toggle_learning)
        on("shortcuts", self._show_shortcuts)
        self.actions["undo"].setEnabled(False)
        self.actions["redo"].setEnabled(False)

    def _connect(self) -> None:
        p, a, d = self.proposals, self.annotator, self.documents
        self.engine.engine_ready.connect(self._engine_ready)
        self.engine.engine_error.connect(self.show_error)
        p.proposals_changed.connect(self._proposals_changed)
        p.current_changed.connect(self._current_proposal)
        p.busy_changed.connect(self.strip.set_busy)
        p.latency_measured.connect(self.status.set_latency)
        p.message.connect(self.show_message)
        self.strip.picked.connect(p.pick)
        d.save_state_changed.connect(self.status.set_saved)
        d.message.connect(self.show_message)
        d.undo_group.canUndoChanged.connect(lambda _can: self._update_undo())
        d.undo_group.canRedoChanged.connect(self.actions["redo"].setEnabled)
        d.changed.connect(self._doc_changed)
        self.project.opened.connect(self._project_opened)
        self.project.open_failed.connect(self.show_error)
        self.project.image_shown.connect(a.show_image)
        self.project.current_row_changed.connect(self.images_panel.set_current)
        self.project.message.connect(self.show_message)
        self.project.exported.connect(
            lambda r: (self.show_error if r.skipped else self.show_message)(r.text())
        )
        self.project.export_failed.connect(self.show_error)
        self.images_panel.row_activated.connect(self.project.go)
        self.images_panel.next_todo.connect(self.project.next_todo)
        a.annotations_changed.connect(self.annotations_panel.show_annotations)
        a.image_changed.connect(self._image_changed)
        a.label_changed.connect(self._label_changed)
        a.stats_changed.connect(self.stats_panel.show_timings)
        self.stats_panel.whole_folder.connect(self._folder_timings)
        a.message.connect(self.show_message)
        self.shapes.message.connect(self.show_message)
        a.selection_changed.connect(self._selection_changed)
        self.annotations_panel.selection_made.connect(a.set_selection)
        self.annotations_panel.visibility_changed.connect(a.set_visible)
        self.annotations_panel.relabel_requested.connect(
            lambda: self.open_label_picker(relabel=True)
        )
        self.annotations_panel.delete_requested.connect(a.delete_selected)
        self.label_picker.chosen.connect(self._label_chosen)
        self.label_picker.closed.connect(self._refocus)
        pre = self.preannotate
        pre.progress.connect(self.preannotate_panel.set_progress)
        pre.running_changed.connect(self.preannotate_panel.set_running)
        pre.message.connect(self._preannotate_message)
        pre.weights_missing.connect(self.offer_weights)
        pre.file_updated.connect(lambda path: self.project.mark(path, RowState.REVIEW))
        pre.file_updated.connect(self.project.loader.drop)
        self.preannotate_panel.run_image.connect(self.actions["preannotate_image"].trigger)
        self.preannotate_panel.run_folder.connect(self.actions["preannotate_folder"].trigger)
        self.preannotate_panel.cancel.connect(pre.cancel)
        self.preannotate_panel.accept.connect(lambda: self.review(True))
        self.preannotate_panel.reject.connect(lambda: self.review(False))
        self.status.weights_clicked.connect(lambda: self.offer_weights("", RECOMMENDED_MODEL))
        self.start_page.open_clicked.connect(self.open_folder_dialog)
        self.start_page.folder_chosen.connect(lambda f: self.open_folder(Path(f)))
        self.learning.message.connect(self.show_message)
        self.learning.progress.connect(self._learning_progress)
        self.learning.running_changed.connect(self._learning_running)
        self.learning.finished.connect(self._learned)

    def _engine_ready(self, info: EngineInfo) -> None:
        self.status.set_engine(info.label, info.device, info.note)
        fallback = device_fallback(self.settings.device, info.device, info.name)
        if fallback:
            self.show_error(fallback)
        if info.weights_missing or self.engine.fell_back:
            self.status.weights.setToolTip(info.weights_missing or "an engine could not start")
            self.status.weights.show()
        else:
            self.status.weights.hide()

    def _project_opened(self, project) -> None:  # type: ignore[no-untyped-def]
        self.setWindowTitle(f"Scuba Steve — {project.root}")
        self.settings.last_folder = str(project.root)
        self.settings.recent_folders = remember_folder(self.settings.recent_folders, project.root)
        self.pages.setCurrentWidget(self.view)
        self.strip.show()
        self.annotator.set_labels(list(project.labels), self.settings.recent_labels)
        self.actions.name_labels(self.annotator.keyed)

    def _update_hint(self) -> None:
        entry = self.annotator.entry
        if entry is not None and entry.problem:
            hint = "This image is read-only: its annotation file cannot be read (see above)."
        else:
            hint = self.tools[self.tool_name].hint
        self.strip.set_idle_hint(hint)

    def undo(self) -> None:
        """Ctrl+Z: while proposals are open it acts on them (the last click, then the box); else
        the document's last change."""
        if not self.proposals.undo():
            self.documents.undo_group.undo()
        self._update_undo()

    def _update_undo(self) -> None:
        can = self.documents.undo_group.canUndo() or self.proposals.active
        self.actions["undo"].setEnabled(can)

    def _image_changed(self, entry) -> None:  # type: ignore[no-untyped-def]
        self.messages.image_changed(entry.key if entry else None)
        if entry is not None:  # its row as its file says (the scan only saw that it exists)
            self._doc_changed(entry.key)
        self.banner.show_problem(entry.problem if entry else None)
        self.preannotate_panel.set_status(PREANNOTATE_TEXT)
        self._update_hint()
        self.view.fit()
        tool = self.tools.get(self.tool_name)
        if isinstance(tool, VertexTool):
            tool.refresh()

    def _doc_changed(self, key: str) -> None:
        state = self.documents.get(key)
        if state is None or state.problem:
            return
        self.project.mark(state.doc.path, doc_row_state(state.doc))
        tool = self.tools.get(self.tool_name)
        if isinstance(tool, VertexTool) and key == getattr(self.documents.current, "key", None):
            tool.refresh()

    def _selection_changed(self, _id: object) -> None:
        tool = self.tools.get(self.tool_name)
        if isinstance(tool, VertexTool):
            tool.refresh()

    def _proposals_changed(self, result) -> None:  # type: ignore[no-untyped-def]
        self.strip.show_set(result, self.proposals.moved)
        self._update_undo()
        self.actions.set_enabled(PROPOSAL_ACTIONS, result is not None and bool(result.views))
        self.actions["discard"].setEnabled(self.proposals.active)
        if result is None:
            p = self.proposals
            self.scene.show_proposal(None)
            self.scene.set_box(p.box if p.active else None, pending=True)
            self.scene.set_points(p.points if p.active else ())
        else:
            self.scene.set_box(result.box)
            self.scene.set_points(result.points)

    def _current_proposal(self, index: int) -> None:
        result = self.proposals.result
        self.strip.set_current(index)
        self.scene.show_proposal(result.views[index] if result is not None and index >= 0 else None)

    def _label_changed(self, label: str) -> None:
        self.settings.recent_labels = self.annotator.labels.recent
        self.label_button.show_label(label)

    def _label_chosen(self, label: str) -> None:
        if self._relabel:
            self.annotator.relabel_selected(label)
        else:
            self.annotator.set_label(label)

    def _refocus(self) -> None:
        # Not every platform hands activation back when a popup closes; the keys must reach us.
        self.activateWindow()
        self.view.setFocus()

    # -- behaviour the actions call ----------------------------------------------------------------

    def open_label_picker(self, relabel: bool = False) -> None:
        if relabel and self.annotator.selected is None:
            self.show_message("Select an annotation to relabel first.")
            return
        self._relabel = relabel
        box = None
        state, selected = self.annotator.state, self.annotator.selected
        if relabel and state is not None and selected is not None:
            with contextlib.suppress(KeyError):
                polygons = state.doc.get(selected).polygons
                box = polygons_bounds(polygons) if polygons else None
        anchor = picker_anchor(self.view, box, self.label_button)
        keys = {
            label: self.actions.keys_of(f"label_{n}")
            for n, label in enumerate(self.annotator.keyed, 1)
        }
        self.label_picker.open_with(self.annotator.labels, anchor, keys)

    def _resize_brush(self, factor: float) -> None:
        brush, eraser = self.tools["brush"], self.tools["eraser"]
        assert isinstance(brush, BrushTool) and isinstance(eraser, BrushTool)
        brush.resize(factor)
        eraser.resize(factor)
        self.show_message(f"Brush radius: {brush.radius:.0f} px")

    def _show_shortcuts(self) -> None:
        from scubasteve.gui.views.dialogs import ShortcutsDialog

        ShortcutsDialog(self.actions.shortcut_rows(), self).open()

    def _folder_timings(self) -> None:
        """Per-label times from every annotation file of the folder, read on a worker."""
        from scubasteve.gui.stats import recorded_times, timings_of

        project = self.project.project
        if project is None:
            return
        paths = [project.annotation_path(image) for image in project.images]
        submit(
            self.pool,
            lambda: timings_of(recorded_times(p for p in paths if p.is_file())),
            on_done=lambda r: self.stats_panel.show_timings(*r, scope="Whole folder"),
            on_error=lambda exc: self.show_message(f"Could not read the times: {exc}"),
        )

    def _preannotate(self, folder: bool) -> None:
        """Pre-annotate the image shown, or the folder's images (those not yet done if asked)."""
        if self.project.project is None:
            self.show_message("Open a folder first.")
            return
        if not folder:
            if self.annotator.entry is not None:
                self.preannotate.run([self.annotator.entry.path])
            return
        wanted = (RowState.TODO,)
        if not self.preannotate_panel.skip_done.isChecked():
            wanted = (RowState.TODO, RowState.STARTED, RowState.DONE, RowState.REVIEW)
        self.preannotate.run(self.project.images_in(wanted))

    def export_coco_dialog(self) -> None:
        project = self.project.project
        if project is None:
            self.show_message("Open a folder first.")
            return
        start = str(default_export_path(project.root))
        path, _ = QFileDialog.getSaveFileName(self, "Export COCO", start, "JSON (*.json)")
        if path:
            self.export_coco(Path(path))

    def export_coco(self, path: Path) -> None:
        """Export the folder (open documents as edited) to one COCO file, on a worker."""
        problems = self.documents.problems()
        docs = {str(d.path): d for d in self.documents.all_docs() if str(d.path) not in problems}
        self.project.export_coco(path, docs, problems)

    def open_settings(self) -> None:
        from scubasteve.gui.views.dialogs import SettingsDialog

        dialog = SettingsDialog(self.settings, self, texts=self.actions.texts())
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: Settings) -> None:
        """Use `new` from now on (restarting only what changed) and save it."""
        old, self.settings = self.settings, new
        self._report_clashes(self.actions.apply_shortcuts(new.shortcuts))
        self.proposals.k = new.proposals
        self.proposals.tolerance = new.polygon_tolerance
        self.proposals.min_island = new.min_island_area
        if new.instance_colors != old.instance_colors:
            self.scene.instance_colors = new.instance_colors
            self.annotator.refresh()
        pixellib = ("pixellib_model", "pixellib_speed", "pixellib_min_score", "device")
        if any(getattr(new, k) != getattr(old, k) for k in pixellib):
            self.preannotate.set_factory(default_segmenter_factory(new))
        engine = ("engine", "device", "deepmask_model")
        if any(getattr(new, k) != getattr(old, k) for k in engine):
            self.engine.start(new.engine, new.device)
        if new.output_folder != old.output_folder and self.project.project is not None:
            self.project.output_folder = new.output_folder
            self.open_folder(self.project.project.root)
        try:
            save_settings(new)
        except Exception as exc:
            self.show_error(f"Settings could not be saved: {exc}")

    def _report_clashes(self, clashes: list[str]) -> None:
        if clashes:
            self.show_error(" ".join(clashes))

    def set_tool(self, name: str) -> None:
        self.actions[f"tool_{name}"].setChecked(True)
        if name == self.tool_name:
            return
        old = self.tools.get(self.tool_name)
        if old is not None:
            old.deactivate()
        if name != "box":
            self.proposals.discard()
        self.tool_name = name
        tool = self.tools[name]
        tool.activate()
        self.view.tool = tool
        self.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self._update_hint()
        self.status.showMessage(f"Tool: {name}", 2000)

    def review(self, accept: bool) -> None:
        nxt = self.preannotate.review(accept, self.annotator.selected)
        self.annotator.select(nxt)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open image folder", self.settings.last_folder
        )
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        self.proposals.discard()
        self.project.open_folder(folder)

    # -- learning from the folder's annotations -------------------------------------------------------

    def _default_proposer(self, name: str, device: str) -> MaskProposer:
        # Runs on the engine thread; reads the setting when the engine is (re)created.
        return default_factory(name, device, self.settings.deepmask_model or None)

    def toggle_learning(self) -> None:
        """Start fine-tuning DeepMask on this folder's annotations, or cancel a run in progress."""
        if self.learning.running:
            self.learning.cancel()
            return
        project = self.project.project
        if project is None:
            self.show_message("Open a folder first.")
            return
        if not self.documents.flush(10000):
            self.show_error("Annotations are still being written; try again in a moment.")
            return
        folder = project.annotation_dir or project.root
        self.learning.start(
            folder, init=self.settings.deepmask_model or None, device=self.settings.device
        )

    def _learning_progress(self, done: int, total: int) -> None:
        self.status.showMessage(f"DeepMask learning: epoch {done} of {total} done", 0)

    def _learning_running(self, running: bool) -> None:
        text = "Cancel DeepMask learning" if running else SPECS["learn"].text
        self.actions["learn"].setText(text)

    def _learned(self, report: Any) -> None:
        if report.installed is None:
            return
        # Use the new model from now on; the ensemble still leaves it out if it measured worse
        # than the classic engine (the verdict says so).
        self.settings.deepmask_model = report.name
        self.engine.start(self.settings.engine, self.settings.device)

    def offer_weights(self, reason: str, select: str = "") -> None:
        from scubasteve.gui.views.weights_dialog import WeightsDialog

        dialog = WeightsDialog(reason, self, select=select)
        dialog.installed.connect(
            lambda _p: self.engine.start(self.settings.engine, self.settings.device)
        )
        dialog.open()

    def show_message(self, text: str) -> None:
        self.messages.info(text)

    def show_error(self, text: str) -> None:
        self.messages.error(text)  # not a dialog: the keyboard stays with the canvas

    def _image_key(self) -> str | None:
        return self.annotator.entry.key if self.annotator.entry is not None else None

    def _preannotate_message(self, text: str) -> None:
        # Said in the dock when it is open (whole, wrapped), else in the status bar: not both.
        self.preannotate_panel.set_status(text)
        if not self.docks["Pre-annotate"].isVisible():
            self.show_message(text)

    # -- start-up and shutdown ----------------------------------------------------------------------

    def start(self, folder: Path | None) -> None:
        """Called once the window is visible: heavy work starts now, in the background."""
        prepare_worker_imports()
        self.engine.start(self.settings.engine, self.settings.device)
        target = folder or (Path(self.settings.last_folder) if self.settings.last_folder else None)
        if target is not None and target.is_dir():
            self.open_folder(target)
        else:
            self.show_message("Open a folder of images with Ctrl+O (F1 lists every shortcut).")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            QTimer.singleShot(0, self.first_shown.emit)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save everything, then go at once: engine work in flight is not waited for (ADR 0507).

        Quitting took 2.1 s: the close waited up to 2 s for the engine thread to finish the image
        it was preparing (or a proposal) although nothing of it is kept.
        """
        self.proposals.discard()
        self.preannotate.cancel()
        self.learning.cancel()
        # An accepted mask still being outlined becomes an annotation (and is saved) first.
        deadline = time.monotonic() + 10.0
        while self.proposals.pending_accepts and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if not self.documents.flush(10000):
            self.show_error("Some annotations are still being written; try closing again.")
            event.ignore()
            return
        if self._save_settings_on_close:
            try:
                save_settings(self.settings)
            except Exception as exc:  # settings are a convenience; closing must not fail on them
                log.warning("could not save settings: %s", exc)
        self.closed_cleanly = True
        super().closeEvent(event)
