"""The main window: builds the parts and wires their signals. Behaviour lives in the controllers:
row state in `ProjectController`, settings in `SettingsController` and each part's
`apply_settings`, learning in `LearningController`, the tools in `ToolController`, the segmenter
in `PreannotateController`; closing asks each part to finish its own work."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow

from scubasteve.core.settings import Settings
from scubasteve.gui.actions import LABEL_KEYS, ActionRegistry
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
from scubasteve.gui.controllers.messages import Messages
from scubasteve.gui.controllers.preannotate import PreannotateController, SegmenterFactory
from scubasteve.gui.controllers.project import ProjectController
from scubasteve.gui.controllers.proposals import ProposalController
from scubasteve.gui.controllers.refit import RefitController
from scubasteve.gui.controllers.settings import SettingsController, engine_changed
from scubasteve.gui.controllers.shapes import ShapeController
from scubasteve.gui.controllers.tools import ToolController
from scubasteve.gui.menus import build_menus, build_toolbar
from scubasteve.gui.render import ProposalSet
from scubasteve.gui.tools.base import ToolContext
from scubasteve.gui.views.label_picker import picker_anchor
from scubasteve.gui.views.panels import PREANNOTATE_TEXT
from scubasteve.gui.views.report_dialog import show_report
from scubasteve.gui.views.window_layout import build_views
from scubasteve.gui.workers import make_pool, prepare_worker_imports
from scubasteve.io.project_export import default_export_path

#: The actions that act on shown proposals (disabled while none are shown).
PROPOSAL_ACTIONS = ("accept", "discard", "next_proposal", "prev_proposal",
                    *(f"pick_{n}" for n in range(1, 11)))  # fmt: skip


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
        self.config = SettingsController(settings, save_settings_on_close, self)
        self._shown_once = False
        self.closed_cleanly = False  # everything saved on close: the process may end at once
        self.pool = make_pool("work")

        # controllers (engines are made on the engine thread, with the settings of that moment)
        self.engine = EngineHost(proposer_factory or (lambda name, device: default_factory(
            name, device, self.settings.deepmask_model or None)), self)  # fmt: skip
        self.proposals = ProposalController(self.engine, self.pool, self)
        self.proposals.apply_settings(settings, settings)
        self.documents = DocumentController(make_pool("save"), self)
        self.project = ProjectController(self.pool, self)
        self.project.output_folder = settings.output_folder
        self.project.loader.preloaded.connect(lambda e: self.engine.prefetch(e.key, e.rgb))
        self.scene = CanvasScene()
        self.scene.instance_colors = settings.instance_colors
        self.annotator = AnnotatorController(self.scene, self.documents, self.proposals, self)
        self.project.follow(self.documents)
        self.shapes = ShapeController(
            self.documents, self.annotator, self.pool, lambda: self.settings.polygon_tolerance,
            lambda: self.settings.min_island_area, self,
        )  # fmt: skip
        self.refit = RefitController(
            self.engine, self.annotator, self.project, self.pool, self.proposals.outline,
            lambda: self.proposals.k, self,
        )  # fmt: skip
        self.learning = LearningController(parent=self)
        self.preannotate = PreannotateController(self.documents, self.project.annotation_path,
                                                 settings, segmenter_factory, self)  # fmt: skip

        # views
        v = build_views(self, self.scene, self.project.model, settings.recent_folders)
        self.views = v
        self.view, self.banner, self.notice, self.strip = v.view, v.banner, v.notice, v.strip
        self.start_page, self.pages, self.docks = v.start_page, v.pages, v.docks
        self.images_panel, self.annotations_panel = v.images_panel, v.annotations_panel
        self.preannotate_panel, self.stats_panel = v.preannotate_panel, v.stats_panel
        self.status, self.label_picker = v.status, v.label_picker
        self.messages = Messages(self.status, self.notice, self)

        ctx = ToolContext(
            scene=self.scene, view=self.view, proposals=self.proposals, documents=self.documents,
            label=lambda: self.annotator.label, selected=lambda: self.annotator.selected,
            select=self.annotator.select, toggle_select=self.annotator.toggle_in_selection,
            locked=self.annotator.refuse_locked, tolerance=lambda: self.settings.polygon_tolerance,
            min_island=lambda: self.settings.min_island_area,
        )  # fmt: skip
        self.tools = ToolController(ctx, self.pool, self)

        self.actions = ActionRegistry(self)
        self._report_clashes(self.actions.apply_shortcuts(settings.shortcuts))
        self._bind_actions()
        build_menus(self, self.actions)
        self.label_button = build_toolbar(self, self.actions)
        self.label_button.clicked.connect(self.open_label_picker)
        self._connect()
        self.tools.set_tool("box")
        self.actions.set_enabled(PROPOSAL_ACTIONS, False)
        self.resize(1400, 900)

    @property
    def settings(self) -> Settings:
        return self.config.current

    @property
    def tool_name(self) -> str:
        return self.tools.name

    # -- wiring -------------------------------------------------------------------------------------

    def _bind_actions(self) -> None:
        """What each action of the table (`gui.actions.ACTIONS`) does: the owner's method."""
        p, a, s, t, project, v = (
            self.proposals, self.annotator, self.shapes, self.tools, self.project, self.view
        )  # fmt: skip
        skip_done = self.preannotate_panel.skip_done
        for name, handler in (
            ("open_folder", self.open_folder_dialog), ("save", lambda: self.documents.save()),
            ("export_coco", self.export_coco_dialog), ("settings", self.open_settings),
            ("weights", lambda: self.offer_weights("")), ("quit", self.close),
            ("undo", lambda: (a.undo(), self._update_undo())),
            ("redo", self.documents.undo_group.redo), ("pick_label", self.open_label_picker),
            ("relabel", lambda: self.open_label_picker(relabel=True)),
            ("delete", a.delete_selected), ("hide", a.toggle_selected_hidden),
            ("hide_all", a.toggle_all_hidden), ("finish_image", a.toggle_finished),
            ("merge", s.merge), ("subtract", s.subtract), ("lock", s.toggle_lock),
            ("simpler", s.simpler), ("finer", s.finer),
            ("brush_bigger", lambda: t.resize_brush(1.25)),
            ("brush_smaller", lambda: t.resize_brush(0.8)),
            ("accept", p.accept), ("discard", p.discard),
            ("next_proposal", lambda: p.cycle(1)), ("prev_proposal", lambda: p.cycle(-1)),
            ("next_image", lambda: project.step(1)), ("prev_image", lambda: project.step(-1)),
            ("next_todo", project.next_todo), ("fit", v.fit), ("actual_size", v.actual_size),
            ("zoom_in", lambda: v.zoom_by(1.25)), ("zoom_out", lambda: v.zoom_by(0.8)),
            ("preannotate_image", lambda: self.preannotate.run_image(a.entry)),
            ("preannotate_folder",
             lambda: self.preannotate.run_folder(project, skip_done=skip_done.isChecked())),
            ("review_accept", lambda: a.review(True)), ("review_reject", lambda: a.review(False)),
            ("carry", self.refit.carry), ("boxes_to_masks", self.refit.boxes_to_masks),
            ("learn", self.toggle_learning), ("shortcuts", self._show_shortcuts),
            *((f"label_{n}", lambda n=n: a.use_label_key(n)) for n in range(1, LABEL_KEYS + 1)),
            *((f"tool_{name}", lambda name=name: t.set_tool(name)) for name in t.tools),
            *((f"pick_{n}", lambda n=n: p.pick(n - 1)) for n in range(1, 11)),
        ):  # fmt: skip
            self.actions.on(name, handler)
        self.actions["undo"].setEnabled(False)
        self.actions["redo"].setEnabled(False)

    def _connect(self) -> None:
        p, a, d, project, pre, c = (
            self.proposals, self.annotator, self.documents, self.project, self.preannotate,
            self.config,
        )  # fmt: skip
        panel, picker, learning = self.preannotate_panel, self.label_picker, self.learning
        shapes_list = self.annotations_panel
        for signal, slot in (
            (self.engine.engine_ready, self._engine_ready),
            (self.engine.engine_error, self.show_error),
            (p.proposals_changed, self._proposals_changed),
            (p.current_changed, self.strip.set_current),
            (p.busy_changed, self.strip.set_busy), (p.latency_measured, self.status.set_latency),
            (self.strip.picked, p.pick), (d.save_state_changed, self.status.set_saved),
            (d.undo_group.canUndoChanged, lambda _can: self._update_undo()),
            (d.undo_group.canRedoChanged, self.actions["redo"].setEnabled),
            (d.changed, self.tools.refresh), (project.opened, self._project_opened),
            (project.open_failed, self.show_error), (project.image_shown, a.show_image),
            (project.current_row_changed, self.images_panel.set_current),
            (project.exported, lambda r: self.messages.outcome(r.text(), failed=bool(r.skipped))),
            (project.export_failed, self.show_error),
            (project.times_read, partial(self.stats_panel.show_timings, scope="Whole folder")),
            (self.images_panel.row_activated, project.go),
            (self.images_panel.next_todo, project.next_todo),
            (a.annotations_changed, shapes_list.show_annotations),
            (a.image_changed, self._image_changed), (a.label_changed, self._label_changed),
            (a.stats_changed, self.stats_panel.show_timings),
            (a.selection_changed, lambda _id: self.tools.refresh()),
            (self.stats_panel.whole_folder, project.read_times),
            (self.tools.notice, self.messages.refusal),
            (self.tools.changed, self._tool_changed),
            (shapes_list.selection_made, a.set_selection),
            (shapes_list.visibility_changed, a.set_visible),
            (shapes_list.relabel_requested, lambda: self.open_label_picker(True)),
            (shapes_list.delete_requested, a.delete_selected),
            (picker.chosen, a.choose_label), (picker.closed, self._refocus),
            (pre.progress, panel.set_progress), (pre.running_changed, panel.set_running),
            (pre.view_progress, panel.set_view_progress),
            (pre.message, self._preannotate_message), (pre.weights_missing, self.offer_weights),
            (pre.file_updated, lambda path, doc: project.show_state(doc)),
            (pre.file_updated, lambda path, _doc: project.loader.drop(path)),
            (panel.run_image, self.actions["preannotate_image"].trigger),
            (panel.run_folder, self.actions["preannotate_folder"].trigger),
            (panel.cancel, pre.cancel), (panel.accept, lambda: a.review(True)),
            (panel.reject, lambda: a.review(False)),
            (self.status.weights_clicked, lambda: self.offer_weights("", RECOMMENDED_MODEL)),
            (self.start_page.open_clicked, self.open_folder_dialog),
            (self.start_page.folder_chosen, lambda f: self.open_folder(Path(f))),
            (learning.progress, self.status.show_learning),
            (learning.running_changed,
             lambda on: self.actions.set_text("learn", "Cancel learning" if on else "")),
            (learning.model_installed, lambda name: c.change(deepmask_model=name)),
            (learning.verdict, lambda title, text: show_report(self, title, text)),
            (c.error, self.show_error), (c.changed, self._settings_changed),
            (c.changed, p.apply_settings), (c.changed, a.apply_settings),
            (c.changed, pre.apply_settings), (c.changed, project.apply_settings),
        ):  # fmt: skip
            signal.connect(slot)
        for source in (p, d, project, a, self.shapes, self.refit, self.tools, learning):
            source.message.connect(self.show_message)

    def _engine_ready(self, info: EngineInfo) -> None:
        self.messages.engine_ready(info, self.settings.device, self.engine.fell_back)

    def _settings_changed(self, new: Settings, old: Settings) -> None:
        self._report_clashes(self.actions.apply_shortcuts(new.shortcuts))
        if engine_changed(new, old):
            self.engine.start(new.engine, new.device)

    def _project_opened(self, project) -> None:  # type: ignore[no-untyped-def]
        self.setWindowTitle(f"Scuba Steve — {project.root}")
        self.config.folder_opened(project.root)
        self.pages.setCurrentWidget(self.view)
        self.strip.show()
        self.annotator.set_labels(list(project.labels), self.settings.recent_labels)
        self.actions.name_labels(self.annotator.keyed)

    def _update_hint(self) -> None:
        entry = self.annotator.entry
        self.strip.set_idle_hint(
            self.tools.hint(read_only=entry is not None and bool(entry.problem))
        )

    def _tool_changed(self, name: str) -> None:
        self.actions[f"tool_{name}"].setChecked(True)
        self._update_hint()
        self.status.showMessage(f"Tool: {name}", 2000)

    def _update_undo(self) -> None:
        self.actions["undo"].setEnabled(self.annotator.can_undo)

    def _image_changed(self, entry) -> None:  # type: ignore[no-untyped-def]
        self.messages.image_changed(entry.key if entry else None)
        self.banner.show_problem(entry.problem if entry else None)
        self.preannotate_panel.set_status(PREANNOTATE_TEXT)
        self._update_hint()
        self.view.fit()
        self.tools.refresh()

    def _proposals_changed(self, result: ProposalSet | None) -> None:
        self.strip.show_set(result, self.proposals.moved)
        self._update_undo()
        self.actions.set_enabled(PROPOSAL_ACTIONS, result is not None and bool(result.views))
        self.actions["discard"].setEnabled(self.proposals.active)

    def _label_changed(self, label: str) -> None:
        self.settings.recent_labels = self.annotator.labels.recent
        self.label_button.show_label(label)

    def _refocus(self) -> None:
        # Not every platform hands activation back when a popup closes; the keys must reach us.
        self.activateWindow()
        self.view.setFocus()

    # -- what the actions open ----------------------------------------------------------------------

    def open_label_picker(self, relabel: bool = False) -> None:
        if not self.annotator.ask_label(relabel):
            return
        box = self.annotator.selected_box() if relabel else None
        anchor = picker_anchor(self.view, box, self.label_button)
        keys = {
            label: self.actions.keys_of(f"label_{n}")
            for n, label in enumerate(self.annotator.keyed, 1)
        }
        self.label_picker.open_with(self.annotator.labels, anchor, keys)

    def _show_shortcuts(self) -> None:
        from scubasteve.gui.views.dialogs import ShortcutsDialog

        ShortcutsDialog(self.actions.shortcut_rows(), self).open()

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
        self.project.export_coco(path, self.documents)

    def open_settings(self) -> None:
        from scubasteve.gui.views.dialogs import SettingsDialog

        dialog = SettingsDialog(self.settings, self, texts=self.actions.texts())
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: Settings) -> None:
        """Use `new` from now on (each part restarts only what changed) and save it."""
        self.config.replace(new)

    def _report_clashes(self, clashes: list[str]) -> None:
        if clashes:
            self.show_error(" ".join(clashes))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open image folder", self.settings.last_folder
        )
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        self.proposals.discard()
        self.project.open_folder(folder)

    def toggle_learning(self) -> None:
        """Fine-tune the learned engine on this folder's annotations (once saved), or cancel."""
        s = self.settings
        self.learning.toggle(self.project.annotation_folder, self.documents,
                             init=s.deepmask_model or None, device=s.device)  # fmt: skip

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
        """Each part ends its own work; everything accepted is saved, then the window goes at
        once: engine work in flight is not waited for (ADR 0507)."""
        self.proposals.discard()
        for part in (self.preannotate, self.learning, self.refit):
            part.cancel()
        # An accepted mask still being outlined becomes an annotation (and is saved) first.
        if not (self.proposals.finish_accepts(10.0) and self.documents.flush(10000)):
            self.show_error("Some annotations are still being written; try closing again.")
            event.ignore()
            return
        self.config.close()
        self.closed_cleanly = True
        super().closeEvent(event)
