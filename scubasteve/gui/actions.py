"""Every user action with its id, text and default shortcut; one table feeds menus, settings and F1."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    keys: tuple[str, ...]
    group: str
    tip: str = ""


def _picks() -> list[ActionSpec]:
    return [
        ActionSpec(f"pick_{n}", f"Pick proposal {n}", (str(n % 10),), "Proposals")
        for n in range(1, 11)
    ]


#: Label keys: Alt+1 … Alt+9 choose the folder's first nine labels (labels.txt order). Digits alone
#: pick proposals. The window names each action after its label once a folder is open.
LABEL_KEYS = 9


def _labels() -> list[ActionSpec]:
    return [
        ActionSpec(f"label_{n}", f"Label {n}", (f"Alt+{n}",), "Labels",
                   "the folder's label with this number (labels.txt order)")
        for n in range(1, LABEL_KEYS + 1)
    ]  # fmt: skip


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_folder", "Open folder…", ("Ctrl+O",), "File"),
    ActionSpec("save", "Save now", ("Ctrl+S",), "File", "annotations are saved after every change"),
    ActionSpec("export_coco", "Export COCO…", ("Ctrl+E",), "File"),
    ActionSpec("settings", "Settings…", ("Ctrl+,",), "File"),
    ActionSpec("quit", "Quit", ("Ctrl+Q",), "File"),
    ActionSpec("undo", "Undo", ("Ctrl+Z",), "Edit"),
    ActionSpec("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit"),
    ActionSpec("pick_label", "Choose label…", ("L",), "Edit", "type to filter, Enter to choose"),
    ActionSpec("relabel", "Relabel selected…", ("R",), "Edit"),
    ActionSpec("delete", "Delete selected annotation", ("Delete",), "Edit"),
    ActionSpec("hide", "Hide/show selected annotation", ("H",), "Edit"),
    ActionSpec("hide_all", "Hide/show all annotations", ("Shift+H",), "Edit"),
    ActionSpec("finish_image", "Mark image finished (again: not finished)", ("Ctrl+D",), "Edit",
               "done in the image list; until then an image with objects is in progress"),
    ActionSpec("merge", "Merge selected shapes (one label)", ("M",), "Shapes",
               "select a shape, Ctrl+click another of its label, M"),
    ActionSpec("subtract", "Subtract the other selected shapes from the first", ("Shift+M",),
               "Shapes", "select the shape to cut, Ctrl+click the one to cut away, Shift+M"),
    ActionSpec("lock", "Lock/unlock selected shapes", ("K",), "Shapes",
               "a locked shape cannot be moved, painted, merged, relabelled or deleted"),
    ActionSpec("simpler", "Simpler outline (fewer points)", (",",), "Shapes"),
    ActionSpec("finer", "Finer outline (more points)", (".",), "Shapes"),
    ActionSpec("tool_box", "Box tool (proposals)", ("W",), "Tools"),
    ActionSpec("tool_polygon", "Polygon tool", ("P",), "Tools", "click vertices, Enter closes"),
    ActionSpec("tool_edit", "Edit vertices", ("V",), "Tools", "drag to move, double-click to insert"),
    ActionSpec("tool_brush", "Brush on selected mask", ("B",), "Tools"),
    ActionSpec("tool_eraser", "Eraser on selected mask", ("E",), "Tools"),
    ActionSpec("brush_bigger", "Bigger brush", ("]",), "Tools"),
    ActionSpec("brush_smaller", "Smaller brush", ("[",), "Tools"),
    ActionSpec("accept", "Accept proposal", ("Return", "Enter"), "Proposals"),
    ActionSpec("discard", "Discard proposals", ("Escape",), "Proposals"),
    ActionSpec("next_proposal", "Next proposal", ("Tab",), "Proposals"),
    ActionSpec("prev_proposal", "Previous proposal", ("Shift+Tab",), "Proposals"),  # not also Backtab: X11 reports Shift+Backtab, which matches both (ambiguous)
    *_picks(),
    *_labels(),
    ActionSpec("next_image", "Next image", ("D", "PgDown"), "Navigate"),
    ActionSpec("prev_image", "Previous image", ("A", "PgUp"), "Navigate"),
    ActionSpec("next_todo", "Next image to do", ("Shift+D",), "Navigate"),
    ActionSpec("fit", "Fit image to window", ("F",), "View"),
    ActionSpec("actual_size", "Actual size (1:1)", ("Ctrl+0",), "View"),
    ActionSpec("zoom_in", "Zoom in", ("Ctrl++", "Ctrl+="), "View"),
    ActionSpec("zoom_out", "Zoom out", ("Ctrl+-",), "View"),
    ActionSpec("preannotate_image", "Pre-annotate this image (PixelLib)", ("Ctrl+R",), "Pre-annotate"),
    ActionSpec("preannotate_folder", "Pre-annotate the folder (PixelLib)", ("Ctrl+Shift+R",), "Pre-annotate"),
    ActionSpec("review_accept", "Accept the shape to review", ("Y",), "Review",
               "a pre-annotation, a carried shape or a mask made from a rectangle (dashed)"),
    ActionSpec("review_reject", "Reject the shape to review", ("N",), "Review",
               "removes it; a mask made from a rectangle gives the rectangle back"),
    ActionSpec("carry", "Carry the previous image's shapes here, for review", ("C",), "Review",
               "each followed to where it went and re-fitted by the engine"),
    ActionSpec("boxes_to_masks", "Rectangles to masks, for review", ("Shift+W",), "Review",
               "the selected rectangles, or all of the image's: the engine's top proposal for each"),
    ActionSpec("weights", "Install or import model weights…", ("Ctrl+Shift+M",), "Models"),
    ActionSpec("learn", "Improve the engine from this folder's annotations", ("Ctrl+Shift+L",), "Models",
               "fine-tunes IS-Net (DeepMask without IS-Net weights) on the accepted annotations, measures it on "
               "held-out images and keeps it only if not worse; again to cancel"),
    ActionSpec("shortcuts", "Keyboard shortcuts", ("F1",), "Help"),
)  # fmt: skip

SPECS: dict[str, ActionSpec] = {spec.id: spec for spec in ACTIONS}

#: The canvas tools; their actions are checkable and exclusive, so the toolbar shows the active one.
TOOL_ACTIONS = ("tool_box", "tool_polygon", "tool_edit", "tool_brush", "tool_eraser")


def key_sequences(spec: ActionSpec, overrides: Mapping[str, str]) -> list[QKeySequence]:
    """The action's keys: the user's override (``"Ctrl+Shift+Z; Ctrl+Y"``, may be empty) or the
    defaults."""
    if spec.id in overrides:
        text = overrides[spec.id]
        return [k for k in QKeySequence.listFromString(text) if not k.isEmpty()] if text else []
    return [QKeySequence(k) for k in spec.keys]


def keys_text(keys: list[QKeySequence]) -> str:
    """Keys as stored in the settings: portable text, several keys separated by "; "."""
    return QKeySequence.listToString(keys, QKeySequence.SequenceFormat.PortableText)


def clashes(bound: Mapping[str, list[QKeySequence]]) -> list[str]:
    """One sentence per key bound to more than one action (then Qt fires neither)."""
    owners: dict[str, list[str]] = {}
    for action_id, keys in bound.items():
        for key in keys:
            owners.setdefault(key.toString(), []).append(action_id)
    return [
        f"{key} is the key of " + " and ".join(f"“{SPECS[a].text}”" for a in ids)
        + ", so neither works; change one in Settings (Ctrl+,), Shortcuts."
        for key, ids in owners.items()
        if len(ids) > 1
    ]  # fmt: skip


class ActionRegistry(QObject):
    """Creates the QActions of `ACTIONS`, applies shortcut overrides, connects handlers."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.actions: dict[str, QAction] = {}
        for spec in ACTIONS:
            action = QAction(spec.text, parent)
            action.setObjectName(spec.id)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            if spec.tip:
                action.setStatusTip(spec.tip)
            self.actions[spec.id] = action
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusive(True)
        for action_id in TOOL_ACTIONS:
            self.actions[action_id].setCheckable(True)
            self.tool_group.addAction(self.actions[action_id])
        self.apply_shortcuts({})

    def __getitem__(self, action_id: str) -> QAction:
        return self.actions[action_id]

    def on(self, action_id: str, handler: Callable[[], object]) -> None:
        self.actions[action_id].triggered.connect(lambda _checked=False: handler())

    def apply_shortcuts(self, overrides: Mapping[str, str]) -> list[str]:
        """Use the user's keys; returns what clashes (a hand-edited settings file can hold that)."""
        bound = {spec.id: key_sequences(spec, overrides) for spec in ACTIONS}
        for action_id, keys in bound.items():
            self.actions[action_id].setShortcuts(keys)
        return clashes(bound)

    def set_enabled(self, ids: tuple[str, ...] | list[str], enabled: bool) -> None:
        for action_id in ids:
            self.actions[action_id].setEnabled(enabled)

    def set_text(self, action_id: str, text: str) -> None:
        """Name the action `text` for now ("" gives it back its name from the table)."""
        self.actions[action_id].setText(text or SPECS[action_id].text)

    def keys_of(self, action_id: str) -> str:
        """The action's keys as the user reads them ("Ctrl+Shift+Z, Ctrl+Y")."""
        return ", ".join(
            s.toString(QKeySequence.SequenceFormat.NativeText)
            for s in self.actions[action_id].shortcuts()
        )

    def texts(self) -> dict[str, str]:
        """Each action's name as shown now (label keys name their label)."""
        return {spec.id: self.actions[spec.id].text() for spec in ACTIONS}

    def name_labels(self, labels: list[str]) -> None:
        """Name the label keys' actions after the folder's first labels ("Label 2: dog")."""
        for n in range(1, LABEL_KEYS + 1):
            label = labels[n - 1] if n <= len(labels) else "(none)"
            self.actions[f"label_{n}"].setText(f"Label {n}: {label}")

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(group, action text, keys) for the F1 table, in table order."""
        return [(s.group, self.actions[s.id].text(), self.keys_of(s.id)) for s in ACTIONS]
