"""Marks a person puts on their work: an image declared finished, a shape locked against edits.

Both are plain LabelMe flags (the image's `flags` and a shape's `flags`), so labelme shows them as
check boxes and other tools keep them. An image with objects is not finished until its user says
so: one object on a photo of ten is work in progress.
"""

from __future__ import annotations

from scubasteve.core.annotation import Annotation, ImageDoc

#: Image flag: the user has annotated everything on this image (also: there is nothing to annotate).
FINISHED_FLAG = "finished"
#: Shape flag: the shape is protected from edits (moving vertices, brush, merge, delete, relabel).
LOCKED_FLAG = "locked"


def is_finished(doc: ImageDoc) -> bool:
    return bool(doc.flags.get(FINISHED_FLAG))


def is_locked(annotation: Annotation) -> bool:
    return bool(annotation.flags.get(LOCKED_FLAG))
