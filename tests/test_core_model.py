"""Core data model: undoable commands, labels, projects."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from scubasteve.core.annotation import Annotation, ImageDoc, MaskPatch
from scubasteve.core.commands import (
    AddAnnotation,
    DeleteAnnotation,
    relabel,
    replace_geometry,
)
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Polygon
from scubasteve.core.labels import COCO80, RecentLabels, read_labels_file
from scubasteve.core.project import Project


def _square(x: float) -> Polygon:
    return Polygon(np.array([[x, 0], [x + 5, 0], [x + 5, 5], [x, 5]], float))


def test_add_delete_relabel_and_reshape_undo_and_redo() -> None:
    doc = ImageDoc(Path("a.jpg"), 20, 20)
    done: list = []  # the commands applied, in order (the GUI's undo stack holds them so)

    def push(command) -> None:  # type: ignore[no-untyped-def]
        command.apply(doc)
        done.append(command)

    def undo():  # type: ignore[no-untyped-def]
        command = done.pop()
        command.revert(doc)
        return command

    a = Annotation("cat", (_square(0),))
    b = Annotation("dog", (_square(10),))
    push(AddAnnotation(a))
    push(AddAnnotation(b))
    push(relabel(doc, a.id, "lion"))
    push(replace_geometry(doc, b.id, (_square(12),)))
    push(DeleteAnnotation(a.id))
    assert [x.label for x in doc.annotations] == ["dog"]
    assert doc.annotations[0].polygons[0].exterior[0, 0] == 12
    undo()
    assert [x.label for x in doc.annotations] == ["lion", "dog"]
    undo()
    assert doc.get(b.id).polygons[0].exterior[0, 0] == 10
    relabelled = undo()
    assert doc.get(a.id).label == "cat"
    push(relabelled)  # redo
    assert doc.get(a.id).label == "lion"
    while done:
        undo()
    assert doc.annotations == []


def test_replacing_geometry_drops_the_exact_mask_and_makes_rectangles_polygons() -> None:
    rect = Annotation(
        "r",
        (_square(0),),
        shape_type="rectangle",
        points=np.array([[0, 0], [5, 5]]),
        mask=MaskPatch(np.ones((5, 5), bool)),
    )
    doc = ImageDoc(Path("a.jpg"), 20, 20, [rect])
    replace_geometry(doc, rect.id, (_square(1),)).apply(doc)
    new = doc.annotations[0]
    assert (
        new.shape_type == "polygon"
        and new.mask is None
        and new.points is None
        and new.id == rect.id
    )


def test_annotation_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="label"):
        Annotation("  ")
    with pytest.raises(ValueError, match="shape type"):
        Annotation("a", shape_type="blob")
    with pytest.raises(ValueError, match="finite"):
        Annotation("a", score=float("nan"))
    with pytest.raises(ValueError, match="empty"):
        Annotation.from_mask("a", np.zeros((4, 4), bool))


def test_mask_patch_pastes_and_clips() -> None:
    patch = MaskPatch(np.ones((3, 3), bool), x=-1, y=8)
    full = patch.to_full(10, 10)
    assert full.sum() == 4 and full[8:10, 0:2].all()
    assert MaskPatch.from_full(full).box().xywh() == (0, 8, 2, 2)


def test_labels_file_and_recent_order(tmp_path: Path) -> None:
    f = tmp_path / "labels.txt"
    f.write_text(
        "__ignore__\n_background_\ncat\n# comment\n\ndog\ncat\nhot dog\n", encoding="utf-8"
    )
    labels = read_labels_file(f)
    assert labels == ["cat", "dog", "hot dog"]
    recent = RecentLabels(labels)
    recent.use("hot dog")
    recent.use("dog")
    assert recent.ordered() == ["dog", "hot dog", "cat"]
    assert recent.filter("do") == ["dog", "hot dog"]
    assert recent.filter("") == recent.ordered()
    exact = RecentLabels(["ball boy", "sports ball", "ball"])
    assert exact.filter("Ball") == ["ball", "ball boy", "sports ball"]
    recent.use("zebra")
    assert recent.ordered()[0] == "zebra"
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="UTF-8"):
        read_labels_file(tmp_path / "bad.txt")


def test_project_lists_images_naturally_and_finds_labels(tmp_path: Path) -> None:
    for name in ["img10.jpg", "img2.PNG", "img1.jpg", "notes.txt", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    project = Project.open(tmp_path)
    assert [p.name for p in project.images] == ["img1.jpg", "img2.PNG", "img10.jpg"]
    assert project.labels == list(COCO80)
    assert project.annotation_path(project.images[0]) == tmp_path / "img1.json"
    (tmp_path / "labels.txt").write_text("a\nb\n")
    out = tmp_path / "out"
    project = Project.open(tmp_path, annotation_dir=out)
    assert project.labels == ["a", "b"]
    assert project.annotation_path(project.images[0]) == out / "img1.json"
    with pytest.raises(InputError, match="not a folder"):
        Project.open(tmp_path / "img1.jpg")


def test_an_image_is_to_do_in_progress_to_review_or_done_by_its_file() -> None:
    from scubasteve.core.annotation import (
        FINISHED_FLAG,
        REVIEW_FLAG,
        ImageState,
        accepted,
        doc_state,
    )

    square = Polygon(np.array([[1.0, 1.0], [9.0, 1.0], [9.0, 9.0], [1.0, 9.0]]))
    made = Annotation("fig", polygons=(square,), source="pixellib", flags={REVIEW_FLAG: True})
    hand = Annotation("date", polygons=(square,))
    doc = ImageDoc(Path("a.png"), 10, 10)
    assert doc_state(doc) is ImageState.TODO
    doc.annotations = [hand, made]
    assert made.needs_review and not hand.needs_review
    assert doc_state(doc) is ImageState.REVIEW
    assert accepted(doc).annotations == [hand] and doc.annotations == [hand, made]
    doc.annotations = [hand, made.reviewed()]
    # every shape accepted but not marked finished: one object on a photo of ten is not done
    assert doc_state(doc) is ImageState.STARTED and not doc.annotations[1].needs_review
    doc.flags[FINISHED_FLAG] = True
    assert doc.finished and doc_state(doc) is ImageState.DONE
    doc.annotations.append(made)  # a review still owed beats the finished mark
    assert doc_state(doc) is ImageState.REVIEW
    doc.annotations = []  # finished without objects: "nothing to annotate here"
    assert doc_state(doc) is ImageState.DONE
    # shapes the reader could not understand are a person's work too: not "to do"
    assert doc_state(ImageDoc(Path("b.png"), 10, 10, unreadable_shapes=[{"x": 1}])) is (
        ImageState.STARTED
    )
    assert [s.needs_user for s in ImageState] == [True, True, True, False]


def test_locking_a_shape_is_a_flag_that_unlocking_removes() -> None:
    square = Polygon(np.array([[1.0, 1.0], [9.0, 1.0], [9.0, 9.0], [1.0, 9.0]]))
    shape = Annotation("fig", polygons=(square,), flags={"occluded": True})
    locked = shape.with_lock(True)
    assert locked.locked and not shape.locked and locked.id == shape.id
    assert locked.flags == {"occluded": True, "locked": True}
    assert locked.with_lock(False).flags == {"occluded": True}


def test_a_mask_standing_in_for_a_rectangle_gives_it_back_when_rejected() -> None:
    from scubasteve.core.annotation import REPLACES_KEY

    rect = Annotation(
        "cat", (_square(2),), shape_type="rectangle", points=np.array([[2.0, 2.0], [7.0, 7.0]]),
        source="imported", flags={"occluded": True}, description="left",
    )  # fmt: skip
    made = Annotation("x", (_square(3),), source="classic:grabcut", score=0.8)
    stand_in = made.standing_in_for(rect)
    assert stand_in.id == rect.id and stand_in.label == "cat" and stand_in.needs_review
    assert stand_in.flags["occluded"] and stand_in.description == "left"
    back = stand_in.rejected()
    assert back is not None and back.shape_type == "rectangle" and back.id == rect.id
    assert back.source == "imported" and not back.needs_review and back.flags == rect.flags
    assert back.bounds() == rect.bounds() and REPLACES_KEY not in back.extra
    kept = stand_in.reviewed()
    assert not kept.needs_review and REPLACES_KEY not in kept.extra and kept.shape_type == "polygon"
    assert made.for_review().rejected() is None  # a pre-annotation: nothing to give back
    for damaged in ({"points": "x"}, {"points": [[1, 1], [1, 1]]}, [1, 2], {"points": [[1, "a"]]}):
        odd = dataclasses.replace(stand_in, extra={REPLACES_KEY: damaged})
        assert odd.rejected() is None, damaged  # a hand-edited record: rejected = removed


def test_a_shape_as_a_mask_patch_is_cut_to_the_image() -> None:
    shape = Annotation("fig", (_square(7),))  # x 7..12, y 0..5 on a 10x10 image
    patch = shape.to_patch(10, 10)
    assert patch is not None and (patch.x, patch.y, patch.width, patch.height) == (7, 0, 3, 5)
    assert patch.mask.all()
    assert Annotation("fig", (_square(30),)).to_patch(10, 10) is None  # outside
    exact = MaskPatch(np.ones((4, 4), bool), x=8, y=-2)
    cut = Annotation("fig", mask=exact).to_patch(10, 10)
    assert cut is not None and (cut.x, cut.y, cut.width, cut.height) == (8, 0, 2, 2)
