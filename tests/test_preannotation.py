"""One pre-annotation policy for the window and `scubasteve annotate` (issue 14, item 7).

A stand-in segmenter returns fixed instances, so these tests run the real folder workflow (plan,
write, resume, overwrite) in milliseconds without TensorFlow.
"""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scubasteve.core.annotation import REVIEW_FLAG, Annotation, ImageDoc, MaskPatch
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box, Polygon
from scubasteve.core.project import Project
from scubasteve.inference import preannotation
from scubasteve.inference.maskrcnn.instances import Instance
from scubasteve.inference.preannotation import annotate_folder
from scubasteve.io.json_files import read_json
from scubasteve.io.labelme import read_labelme, write_labelme


class FixedSegmenter:
    """Finds one 'fig' (a 40x30 block) in every image; counts its calls."""

    speed = 1024

    def __init__(self) -> None:
        self.calls = 0

    def detect_async(
        self, rgb: np.ndarray, size: tuple[int, int] | None = None
    ) -> concurrent.futures.Future[list[Instance]]:
        self.calls += 1
        patch = MaskPatch(np.ones((30, 40), dtype=bool), x=10, y=20)
        found = Instance("fig", 2, 0.9, Box(10, 20, 50, 50), patch)
        future: concurrent.futures.Future[list[Instance]] = concurrent.futures.Future()
        future.set_result([found])
        return future


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(2):
        Image.fromarray(np.full((60, 80, 3), 40 * i, dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    return tmp_path


def test_cli_pre_annotations_wait_for_review_as_the_windows_do(folder: Path) -> None:
    summary = annotate_folder(Project.open(folder), FixedSegmenter())
    assert len(summary.written) == 2
    for name in ("im0", "im1"):
        shapes = read_json(folder / f"{name}.json")["shapes"]
        assert shapes and all(s["flags"] == {REVIEW_FLAG: True} for s in shapes)
    # The window runs the same loop (through its background job).
    from scubasteve.gui.controllers import preannotate

    assert preannotate.annotate_images is preannotation.annotate_images


def test_unreviewed_cli_pre_annotations_are_not_training_data(folder: Path) -> None:
    from scubasteve.training.deepmask.run import load_dataset

    annotate_folder(Project.open(folder), FixedSegmenter())
    assert load_dataset(labelme=folder).docs == []


def test_overwrite_replaces_unreviewed_shapes_and_keeps_accepted_and_hand_made_ones(
    folder: Path,
) -> None:
    image = folder / "im0.png"
    square = Polygon(np.array([[1.0, 1.0], [9.0, 1.0], [9.0, 9.0], [1.0, 9.0]]))
    accepted = Annotation("date", polygons=(square,), source="pixellib", score=0.8)
    waiting = Annotation(
        "hazelnut", polygons=(square,), source="pixellib", flags={REVIEW_FLAG: True}
    )
    hand = Annotation("fig", polygons=(square,))
    doc = ImageDoc(path=image, width=80, height=60, annotations=[accepted, waiting, hand])
    write_labelme(doc, folder / "im0.json")

    segmenter = FixedSegmenter()
    summary = annotate_folder(Project.open(folder), segmenter)
    assert summary.kept == [image] and segmenter.calls == 1  # without --overwrite: untouched

    annotate_folder(Project.open(folder), FixedSegmenter(), overwrite=True)
    redone = read_labelme(folder / "im0.json").annotations
    assert sorted((a.label, a.source, bool(a.flags.get(REVIEW_FLAG))) for a in redone) == [
        ("date", "pixellib", False),
        ("fig", "manual", False),
        ("fig", "pixellib", True),
    ]


def test_a_folder_that_cannot_be_written_is_refused_before_any_image_runs(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = folder / "out"
    out.mkdir()
    if os.geteuid() == 0:  # root ignores folder permissions: deny the way the OS would
        denied = PermissionError(13, "Permission denied")
        monkeypatch.setattr(
            preannotation.tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(denied)
        )
    out.chmod(0o555)
    segmenter = FixedSegmenter()
    try:
        with pytest.raises(InputError, match="cannot write") as info:
            annotate_folder(Project.open(folder, annotation_dir=out), segmenter)
    finally:
        out.chmod(0o755)
    assert info.value.path == out.resolve()
    assert segmenter.calls == 0 and not list(out.iterdir())


def test_a_run_reports_progress_and_each_image_and_stops_at_a_cancel(folder: Path) -> None:
    from scubasteve.core.cancel import Cancelled, CancelToken
    from scubasteve.inference.preannotation import ImageOutcome, annotate_images

    project = Project.open(folder)
    todo = [(image, project.annotation_path(image)) for image in project.images]
    cancel = CancelToken()
    progress: list[tuple[int, int]] = []
    outcomes: list[ImageOutcome] = []

    def on_image(outcome: ImageOutcome) -> None:
        outcomes.append(outcome)
        cancel.cancel()  # after the first image

    with pytest.raises(Cancelled):
        annotate_images(
            todo, FixedSegmenter(), progress=lambda d, t: progress.append((d, t)),
            on_image=on_image, cancel=cancel,
        )  # fmt: skip
    assert progress == [(1, 2)]
    assert [o.image.name for o in outcomes] == ["im0.png"] and outcomes[0].doc is not None
    assert (folder / "im0.json").is_file() and not (folder / "im1.json").exists()


def test_images_the_caller_holds_open_are_handed_back_and_not_written(folder: Path) -> None:
    from scubasteve.inference.preannotation import ImageOutcome, annotate_images

    project = Project.open(folder)
    todo = [(image, project.annotation_path(image)) for image in project.images]
    outcomes: list[ImageOutcome] = []
    summary = annotate_images(
        todo, FixedSegmenter(), held=lambda image: image.name == "im0.png",
        on_image=outcomes.append,
    )  # fmt: skip
    assert not (folder / "im0.json").exists() and (folder / "im1.json").is_file()
    held = outcomes[0]
    assert held.image.name == "im0.png" and held.doc is None and held.result is not None
    assert [a.label for a in held.result.annotations] == ["fig"]
    assert len(summary.written) == 2 and summary.labels["fig"] == 2


def test_an_image_that_fails_is_reported_and_the_rest_goes_on(folder: Path) -> None:
    from scubasteve.inference.preannotation import ImageOutcome, annotate_images

    (folder / "im0.png").write_bytes(b"not an image")
    project = Project.open(folder)
    todo = [(image, project.annotation_path(image)) for image in project.images]
    outcomes: list[ImageOutcome] = []
    summary = annotate_images(todo, FixedSegmenter(), on_image=outcomes.append)
    assert [(o.image.name, bool(o.problem)) for o in outcomes] == [
        ("im0.png", True),
        ("im1.png", False),
    ]
    assert [p.name for p, _ in summary.failed] == ["im0.png"]
    assert (folder / "im1.json").is_file()
