"""Menus, the toolbar and what each action does (kept out of main_window.py to keep it short)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QFileDialog, QToolButton

from scubasteve.core.geometry import polygons_bounds
from scubasteve.gui.actions import ACTIONS, TOOL_ACTIONS
from scubasteve.gui.workers import submit

if TYPE_CHECKING:
    from scubasteve.gui.main_window import MainWindow


def wire_actions(w: MainWindow) -> None:
    acts = w.actions
    p, a = w.proposals, w.annotator
    acts.on("open_folder", w.open_folder_dialog)
    acts.on("save", lambda: w.documents.save())
    acts.on("export_coco", lambda: export_coco_dialog(w))
    acts.on("settings", lambda: open_settings(w))
    acts.on("weights", lambda: w.offer_weights(""))
    acts.on("quit", w.close)
    acts.on("undo", w.undo)
    acts.on("redo", w.documents.undo_group.redo)
    acts.on("pick_label", w.open_label_picker)
    acts.on("relabel", lambda: w.open_label_picker(relabel=True))
    acts.on("delete", a.delete_selected)
    acts.on("hide", a.toggle_selected_hidden)
    acts.on("hide_all", a.toggle_all_hidden)
    for name in ("box", "polygon", "edit", "brush", "eraser"):
        acts.on(f"tool_{name}", lambda name=name: w.set_tool(name))
    acts.on("brush_bigger", lambda: _resize_brush(w, 1.25))
    acts.on("brush_smaller", lambda: _resize_brush(w, 0.8))
    acts.on("accept", p.accept)
    acts.on("discard", p.discard)
    acts.on("next_proposal", lambda: p.cycle(1))
    acts.on("prev_proposal", lambda: p.cycle(-1))
    for n in range(1, 11):
        acts.on(f"pick_{n}", lambda n=n: p.pick(n - 1))
    acts.on("next_image", lambda: w.project.step(1))
    acts.on("prev_image", lambda: w.project.step(-1))
    acts.on("next_todo", w.project.next_todo)
    acts.on("fit", w.view.fit)
    acts.on("actual_size", w.view.actual_size)
    acts.on("zoom_in", lambda: w.view.zoom_by(1.25))
    acts.on("zoom_out", lambda: w.view.zoom_by(0.8))
    acts.on("preannotate_image", lambda: preannotate(w, folder=False))
    acts.on("preannotate_folder", lambda: preannotate(w, folder=True))
    acts.on("review_accept", lambda: w.review(True))
    acts.on("review_reject", lambda: w.review(False))
    acts.on("learn", w.toggle_learning)
    acts.on("shortcuts", lambda: show_shortcuts(w))
    acts.actions["undo"].setEnabled(False)
    acts.actions["redo"].setEnabled(False)

    menus: dict[str, object] = {}
    for spec in ACTIONS:
        menu = menus.get(spec.group)
        if menu is None:
            menu = menus[spec.group] = w.menuBar().addMenu(spec.group)
        menu.addAction(acts[spec.id])  # type: ignore[attr-defined]
        w.addAction(acts[spec.id])  # shortcuts work even when the menu bar is hidden

    bar = w.addToolBar("Tools")
    bar.setObjectName("tools")
    w.label_button = QToolButton()
    w.label_button.setText("Label: –  (L)")
    w.label_button.clicked.connect(w.open_label_picker)
    bar.addWidget(w.label_button)
    bar.addSeparator()
    for action_id in TOOL_ACTIONS:
        bar.addAction(acts[action_id])
    bar.addSeparator()
    for action_id in ("undo", "redo", "prev_image", "next_image", "fit"):
        bar.addAction(acts[action_id])


def folder_timings(w: MainWindow) -> None:
    """Per-label times from every annotation file of the folder, read on a worker."""
    from scubasteve.gui.stats import recorded_times, timings_of

    project = w.project.project
    if project is None:
        return
    paths = [project.annotation_path(image) for image in project.images]

    def work():  # type: ignore[no-untyped-def]
        return timings_of(recorded_times(p for p in paths if p.is_file()))

    submit(w.pool, work, on_done=lambda r: w.stats_panel.show_timings(*r, scope="Whole folder"),
           on_error=lambda exc: w.show_message(f"Could not read the times: {exc}"))  # fmt: skip


def _resize_brush(w: MainWindow, factor: float) -> None:
    for name in ("brush", "eraser"):
        w.tools[name].resize(factor)  # type: ignore[attr-defined]
    w.show_message(f"Brush radius: {w.tools['brush'].radius:.0f} px")  # type: ignore[attr-defined]


def preannotate(w: MainWindow, folder: bool) -> None:
    from scubasteve.gui.image_list import RowState

    if w.project.project is None:
        w.show_message("Open a folder first.")
        return
    if not folder:
        if w.annotator.entry is None:
            return
        w.preannotate.run([w.annotator.entry.path])
        return
    model = w.project.model
    skip = w.preannotate_panel.skip_done.isChecked()
    wanted = (RowState.TODO,) if skip else (RowState.TODO, RowState.DONE, RowState.REVIEW)
    rows = [r for r in range(model.rowCount()) if model.state(r) in wanted]
    w.preannotate.run([model.path(r) for r in rows])


def export_coco_dialog(w: MainWindow) -> None:
    if w.project.project is None:
        w.show_message("Open a folder first.")
        return
    path, _ = QFileDialog.getSaveFileName(
        w, "Export COCO", str(default_export_path(w.project.project.root)), "JSON (*.json)"
    )
    if path:
        export_coco(w, Path(path))


def default_export_path(root: Path) -> Path:
    """Beside the image folder, not in it (an export inside would be listed among its files)."""
    return root.parent / f"{root.name}_coco.json"


def export_coco(w: MainWindow, path: Path) -> None:
    """Write every image's annotations (open documents as edited, others from disk) on a worker."""
    project = w.project.project
    if project is None:
        return
    problems = w.documents.problems()
    open_docs = {str(d.path): d for d in w.documents.all_docs() if str(d.path) not in problems}

    def work() -> str:
        import dataclasses

        from scubasteve.core.annotation import REVIEW_FLAG
        from scubasteve.io.coco import write_coco
        from scubasteve.io.labelme import read_labelme

        docs, skipped, unreviewed = [], [], 0
        for image in project.images:
            if str(image) in problems:  # open, read-only: its file could not be read
                skipped.append(project.annotation_path(image).name)
                continue
            doc = open_docs.get(str(image))
            if doc is None:
                json_path = project.annotation_path(image)
                if not json_path.is_file():
                    continue
                try:
                    doc = read_labelme(json_path)
                except Exception:
                    skipped.append(json_path.name)
                    continue
                doc.path = image
            kept = [a for a in doc.annotations if not a.flags.get(REVIEW_FLAG)]
            unreviewed += len(doc.annotations) - len(kept)
            docs.append(dataclasses.replace(doc, annotations=kept))
        write_coco(path, docs, categories=project.labels, root=project.root)
        note = ""
        if skipped:
            names = ", ".join(skipped[:5]) + (
                f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            )
            note = (
                f"; left out {len(skipped)} image(s) whose annotation file cannot be read: {names}"
            )
        if unreviewed:
            note += f"; {unreviewed} pre-annotation(s) not yet reviewed left out"
        return f"Exported {len(docs)} image(s) to {path}{note}."

    def done(text: str) -> None:
        (w.show_error if "cannot be read" in text else w.show_message)(text)

    w.show_message("Exporting COCO…")
    submit(
        w.pool,
        work,
        on_done=done,
        on_error=lambda exc: w.show_error(f"Export failed: {exc}"),
    )


def open_settings(w: MainWindow) -> None:
    from scubasteve.core.settings import save_settings
    from scubasteve.gui.views.dialogs import SettingsDialog

    dialog = SettingsDialog(w.settings, w)
    if not dialog.exec():
        return
    old = w.settings
    new = dialog.result_settings()
    w.settings = new
    w.actions.apply_shortcuts(new.shortcuts)
    w.proposals.k = new.proposals
    w.proposals.tolerance = new.polygon_tolerance
    w.proposals.min_island = new.min_island_area
    if new.instance_colors != old.instance_colors:
        w.scene.instance_colors = new.instance_colors
        w.annotator.refresh()
    pixellib = ("pixellib_model", "pixellib_speed", "pixellib_min_score", "device")
    if any(getattr(new, k) != getattr(old, k) for k in pixellib):
        from scubasteve.gui.main_window import default_segmenter_factory

        w.preannotate.set_factory(default_segmenter_factory(new))
    if (new.engine, new.device, new.deepmask_model) != (
        old.engine,
        old.device,
        old.deepmask_model,
    ):
        w.engine.start(new.engine, new.device)
    if new.output_folder != old.output_folder and w.project.project is not None:
        w.project.output_folder = new.output_folder
        w.open_folder(w.project.project.root)
    try:
        save_settings(new)
    except Exception as exc:
        w.show_error(f"Settings could not be saved: {exc}")


def show_shortcuts(w: MainWindow) -> None:
    from scubasteve.gui.views.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(w.actions.shortcut_rows(), w)
    dialog.open()


def undo(w: MainWindow) -> None:
    """Ctrl+Z: while refining a box, the last click goes (as in labelme); otherwise the last change."""
    if w.proposals.active and w.proposals.points:
        w.proposals.remove_last_point()
        w.scene.set_points(w.proposals.points)
        update_undo(w)
    else:
        w.documents.undo_group.undo()


def update_undo(w: MainWindow) -> None:
    can = w.documents.undo_group.canUndo() or bool(w.proposals.points)
    w.actions["undo"].setEnabled(can)


def picker_anchor(w: MainWindow, relabel: bool) -> QPoint:
    """Where the label picker opens: at the cursor over the image, at the object when relabelling."""
    view = w.view
    state, selected = w.annotator.state, w.annotator.selected
    if relabel and state is not None and selected is not None:
        with contextlib.suppress(KeyError):
            ann = state.doc.get(selected)
            if ann.polygons:
                box = polygons_bounds(ann.polygons)
                point = view.mapFromScene(QPointF(box.x1, box.y0))
                if view.viewport().rect().contains(point):
                    return view.viewport().mapToGlobal(point)
    cursor = QCursor.pos()
    if view.viewport().rect().contains(view.viewport().mapFromGlobal(cursor)):
        return cursor
    return w.label_button.mapToGlobal(w.label_button.rect().bottomLeft())
