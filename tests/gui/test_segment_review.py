"""Masks `scubasteve segment` made open in the window "to review", and Y accepts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.gui_input import key
from PySide6.QtCore import Qt

from scubasteve.cli import main
from scubasteve.core.annotation import Annotation, ImageDoc
from scubasteve.core.geometry import Polygon
from scubasteve.gui.image_list import RowState
from scubasteve.io.labelme import write_labelme

pytestmark = pytest.mark.gui


def _boxes(folder: Path, names: tuple[str, ...]) -> None:
    corners = np.array([[76.0, 56.0], [244.0, 56.0], [244.0, 184.0], [76.0, 184.0]])
    for name in names:
        rect = Annotation("cat", (Polygon(corners),), shape_type="rectangle",
                          points=corners[[0, 2]])  # fmt: skip
        write_labelme(ImageDoc(folder / f"{name}.png", 320, 240, [rect]), folder / f"{name}.json")


def test_segmented_images_open_to_review_and_y_accepts_a_mask(make_window, image_folder, qtbot):  # type: ignore[no-untyped-def]
    _boxes(image_folder, ("img1", "img2"))
    assert main(["segment", str(image_folder), "--engine", "classic"]) == 0
    window = make_window(image_folder)
    model = window.project.model
    row = model.row_of(image_folder / "img1.png")
    window.project.go(row)
    qtbot.waitUntil(lambda: window.annotator.entry.path.name == "img1.png", timeout=5000)
    qtbot.waitUntil(lambda: model.state(row) == RowState.REVIEW, timeout=5000)
    [mask] = window.documents.current.doc.annotations
    assert mask.needs_review and mask.shape_type == "polygon" and mask.label == "cat"
    key(window, Qt.Key.Key_Y)
    [kept] = window.documents.current.doc.annotations
    assert not kept.needs_review and kept.polygons == mask.polygons
    assert model.state(row) != RowState.REVIEW
