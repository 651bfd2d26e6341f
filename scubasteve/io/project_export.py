"""Exporting a whole image folder to one COCO file (what the window's File > Export COCO writes).

Open documents are taken as edited (the caller passes them), the others are read from disk. Images
whose annotation file cannot be read are left out and named; pre-annotations still waiting for
review are left out and counted, so that only what a person accepted becomes training data.

Categories: a folder with a labels file (labels.txt) exports that list, in its order, used or not
(a data set's classes are fixed by it); without one the window offers the COCO 80 and only the
labels used are exported (listing 80 categories for 9 objects' worth of classes misleads). The
summary says which rule applied.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scubasteve.core.annotation import ImageDoc, accepted
from scubasteve.core.errors import Problem
from scubasteve.core.files import printable
from scubasteve.core.labels import find_labels_file
from scubasteve.core.project import Project
from scubasteve.io.coco import write_coco
from scubasteve.io.labelme import read_labelme


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    images: int
    skipped: list[str] = field(default_factory=list)  # annotation files that could not be read
    unreviewed: int = 0  # pre-annotations left out
    categories: int = 0
    category_rule: str = ""  # why these categories: "the labels used" or "the list in labels.txt"
    refused: list[str] = field(default_factory=list)  # images whose name COCO cannot hold

    def text(self) -> str:
        """One line for the status bar."""
        note = ""
        if self.skipped:
            names = ", ".join(self.skipped[:5])
            if len(self.skipped) > 5:
                names += f" and {len(self.skipped) - 5} more"
            note = (
                f"; left out {len(self.skipped)} image(s) whose annotation file cannot be read: "
                f"{names}"
            )
        if self.unreviewed:
            note += f"; {self.unreviewed} pre-annotation(s) not yet reviewed left out"
        if self.refused:
            note += (
                f"; left out {len(self.refused)} image(s) whose file name is not valid UTF-8 "
                f"(rename them): {', '.join(self.refused[:5])}"
            )
        cats = (
            f" with {self.categories} categories ({self.category_rule})" if self.categories else ""
        )
        return f"Exported {self.images} image(s){cats} to {self.path}{note}."


def default_export_path(root: Path) -> Path:
    """Beside the image folder, not in it (an export inside would be listed among its files)."""
    return root.parent / f"{root.name}_coco.json"


def export_project_coco(
    project: Project,
    path: Path,
    open_docs: Mapping[str, ImageDoc] | None = None,
    unreadable: Collection[str] = (),
) -> ExportSummary:
    """Write every image's accepted annotations to the COCO file `path` (atomically).

    `open_docs` maps an image path (str) to its document as currently edited; `unreadable` holds
    image paths whose annotation file is known to be unreadable (left out without reading again).
    """
    docs: list[ImageDoc] = []
    skipped: list[str] = []
    unreviewed = 0
    for image in project.images:
        json_path = project.annotation_path(image)
        if str(image) in unreadable:
            skipped.append(json_path.name)
            continue
        doc = (open_docs or {}).get(str(image))
        if doc is None:
            if not json_path.is_file():
                continue
            try:
                doc = read_labelme(json_path)
            except Exception:  # any unreadable file is left out and named, never fatal
                skipped.append(json_path.name)
                continue
            doc.path = image
        kept = accepted(doc)
        unreviewed += len(doc.annotations) - len(kept.annotations)
        docs.append(kept)
    used = list(dict.fromkeys(a.label for d in docs for a in d.annotations if a.has_area))
    labels_file = find_labels_file(project.root)
    if labels_file is not None:
        categories = list(dict.fromkeys([*project.labels, *used]))
        unused = len([c for c in categories if c not in used])
        rule = f"the list in {labels_file.name}" + (f", {unused} without objects" if unused else "")
    else:
        order = {label: i for i, label in enumerate(project.labels)}
        categories = sorted(used, key=lambda c: order.get(c, len(order)))
        rule = "the labels used; a labels.txt in the folder would fix the list"
    problems: list[Problem] = []
    write_coco(path, docs, categories=categories, root=project.root, problems=problems)
    refused = [
        printable(p.path.name) for p in problems if p.severity == "error" and p.path is not None
    ]
    return ExportSummary(
        path, len(docs) - len(refused), skipped, unreviewed, len(categories), rule, refused
    )
