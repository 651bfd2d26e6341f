"""Small undoable edits of an `ImageDoc`.

Each command records just enough to apply and revert itself. The GUI wraps them in `QUndoCommand`s
(`gui/controllers/document.py`), whose stack is the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.geometry import Polygon


class Command(Protocol):
    """An edit that can be applied and reverted, in that order, any number of times."""

    text: str

    def apply(self, doc: ImageDoc) -> None: ...

    def revert(self, doc: ImageDoc) -> None: ...


@dataclass
class AddAnnotation:
    annotation: Annotation
    index: int | None = None  # None appends
    text: str = "Add annotation"

    def apply(self, doc: ImageDoc) -> None:
        i = len(doc.annotations) if self.index is None else self.index
        doc.annotations.insert(i, self.annotation)

    def revert(self, doc: ImageDoc) -> None:
        del doc.annotations[doc.index_of(self.annotation.id)]


@dataclass
class DeleteAnnotation:
    annotation_id: str
    text: str = "Delete annotation"
    _removed: Annotation | None = field(default=None, repr=False)
    _index: int = field(default=-1, repr=False)

    def apply(self, doc: ImageDoc) -> None:
        self._index = doc.index_of(self.annotation_id)
        self._removed = doc.annotations.pop(self._index)

    def revert(self, doc: ImageDoc) -> None:
        if self._removed is None:
            raise RuntimeError("revert before apply")
        doc.annotations.insert(self._index, self._removed)


@dataclass
class ReplaceAnnotation:
    """Swap an annotation for a changed copy with the same id (relabel, new geometry, ...)."""

    new: Annotation
    text: str = "Edit annotation"
    _old: Annotation | None = field(default=None, repr=False)

    def apply(self, doc: ImageDoc) -> None:
        i = doc.index_of(self.new.id)
        self._old = doc.annotations[i]
        doc.annotations[i] = self.new

    def revert(self, doc: ImageDoc) -> None:
        if self._old is None:
            raise RuntimeError("revert before apply")
        doc.annotations[doc.index_of(self.new.id)] = self._old


@dataclass
class SetImageFlag:
    """Set or clear one of the image's LabelMe flags (e.g. `finished`); revert restores it exactly
    (a flag that was absent is removed again, not written as false)."""

    name: str
    value: bool
    text: str = "Set image flag"
    _before: bool | None = field(default=None, repr=False)

    def apply(self, doc: ImageDoc) -> None:
        self._before = doc.flags.get(self.name)
        if self.value:
            doc.flags[self.name] = True
        else:
            doc.flags.pop(self.name, None)

    def revert(self, doc: ImageDoc) -> None:
        if self._before is None:
            doc.flags.pop(self.name, None)
        else:
            doc.flags[self.name] = self._before


def relabel(doc: ImageDoc, annotation_id: str, label: str) -> ReplaceAnnotation:
    return ReplaceAnnotation(doc.get(annotation_id).with_label(label), text=f"Relabel as {label}")


def replace_geometry(
    doc: ImageDoc, annotation_id: str, polygons: tuple[Polygon, ...], **changes: object
) -> ReplaceAnnotation:
    """A command giving an annotation new polygons; the exact mask is dropped unless given anew."""
    old = doc.get(annotation_id)
    shape_type = "polygon" if old.shape_type in ("rectangle", "circle") else old.shape_type
    changes.setdefault("mask", None)
    changes.setdefault("points", None)
    new = replace(old, polygons=tuple(polygons), shape_type=shape_type, **changes)  # type: ignore[arg-type]
    return ReplaceAnnotation(new, text="Edit shape")
