"""`scubasteve segment`: boxes users already have become masks standing in for them, for review.

LabelMe folders (in place and into an output folder) and COCO files (to COCO and to LabelMe), with
the classic engine (no weights) and a thin random-weight IS-Net: masks where the boxes were, each
box recoverable, reruns that skip what is done, an interrupted run resumed, and bad files, boxes
outside their image, one-pixel boxes and missing images named while the rest is done.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from helpers.proposals import box_around, disc_scene
from PIL import Image

from scubasteve.cli import EXIT_INPUT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, main
from scubasteve.core.annotation import LOCKED_FLAG, REPLACES_KEY, Annotation, ImageDoc
from scubasteve.core.cancel import CancelToken
from scubasteve.core.geometry import Box, Polygon, mask_iou
from scubasteve.inference.engines import create_proposer
from scubasteve.inference.segment import RUN_KEY, SegmentOptions, segment_labelme
from scubasteve.io.labelme import read_labelme, write_labelme

CENTRES = ((150, 120), (110, 100), (200, 140))
OUTSIDE = Box(330, 250, 400, 300)  # beyond the 320x240 image, near enough to be read


def _rectangle(label: str, box: Box, **kw: object) -> Annotation:
    corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    return Annotation(
        label, (Polygon(corners),), shape_type="rectangle",
        points=np.array([[box.x0, box.y0], [box.x1, box.y1]]), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _scene(folder: Path, i: int) -> tuple[Path, np.ndarray]:
    image, disc = disc_scene(centre=CENTRES[i], seed=i)
    path = folder / f"img{i}.png"
    Image.fromarray(image).save(path)
    return path, disc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three photos, each with a ball's rectangle and a one-pixel box; the first also has a box
    outside the image, a locked rectangle and a polygon someone drew; plus a broken file and a
    file whose image is missing."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        image, disc = _scene(photos, i)
        shapes = [
            _rectangle("ball", box_around(disc), description="the red one"),
            _rectangle("speck", Box(10, 10, 11, 11)),
        ]
        if i == 0:
            drawn = Annotation.from_mask("grass", _square(200, 20, 40))
            locked = _rectangle("kept", Box(5, 150, 60, 230), flags={LOCKED_FLAG: True})
            shapes += [_rectangle("gone", OUTSIDE), locked, drawn]
        write_labelme(ImageDoc(image, 320, 240, shapes), image.with_suffix(".json"))
    (photos / "broken.json").write_text('{"shapes": [', encoding="utf-8")
    lost = ImageDoc(photos / "lost.png", 320, 240, [_rectangle("ball", Box(1, 1, 50, 50))])
    write_labelme(lost, photos / "lost.json")
    return photos


def _square(x: int, y: int, side: int) -> np.ndarray:
    mask = np.zeros((240, 320), bool)
    mask[y : y + side, x : x + side] = True
    return mask


def _shapes(path: Path) -> dict[str, Annotation]:
    return {a.label: a for a in read_labelme(path).annotations}


def _segment(*args: str) -> int:
    return main(["segment", *args])


def test_rectangles_become_masks_for_review_and_every_box_stays_recoverable(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {i: _shapes(folder / f"img{i}.json") for i in range(3)}
    broken = (folder / "broken.json").read_bytes()
    assert _segment(str(folder), "--engine", "classic") == EXIT_SOME_FAILED
    out = capsys.readouterr()
    assert "segmented 6 box(es) in 3 file(s)" in out.out and "ball 3, speck 3" in out.out
    assert "img0.json: rectangle 3 (gone)" in out.out and "320x240" in out.out
    assert "broken.json" in out.out and "lost.json" in out.out
    assert "skipped 1 locked rectangle(s)" in out.out
    for i in range(3):
        shapes = _shapes(folder / f"img{i}.json")
        ball, rect = shapes["ball"], before[i]["ball"]
        _, disc = disc_scene(centre=CENTRES[i], seed=i)
        assert ball.shape_type == "polygon" and ball.needs_review
        assert (ball.id, ball.description) == (rect.id, "the red one")
        assert ball.source.startswith("classic:") and ball.score is not None
        assert mask_iou(ball.to_mask(240, 320), disc) > 0.85
        back = ball.rejected()  # what N does in the window: the box comes back
        assert (
            back is not None and back.shape_type == "rectangle" and back.bounds() == rect.bounds()
        )
        speck = shapes["speck"]  # a one-pixel box: a one-pixel mask
        assert speck.needs_review and speck.area() >= 1 and speck.bounds() == Box(10, 10, 11, 11)
    first = _shapes(folder / "img0.json")
    assert first["gone"].shape_type == "rectangle" and not first["gone"].needs_review
    assert first["kept"].shape_type == "rectangle"  # locked: left alone
    assert first["grass"].polygons == before[0]["grass"].polygons  # a drawn polygon: untouched
    assert not first["grass"].needs_review
    saved = json.loads((folder / "img0.json").read_text(encoding="utf-8"))
    assert saved[RUN_KEY]["engine"] == "classic"
    ball_shape = next(s for s in saved["shapes"] if s["label"] == "ball")
    assert ball_shape["flags"] == {"needs_review": True}
    assert ball_shape[REPLACES_KEY]["points"] == [
        [before[0]["ball"].bounds().x0, before[0]["ball"].bounds().y0],  # type: ignore[union-attr]
        [before[0]["ball"].bounds().x1, before[0]["ball"].bounds().y1],  # type: ignore[union-attr]
    ]
    assert (folder / "broken.json").read_bytes() == broken


def test_a_rerun_skips_what_is_done_and_overwrite_redoes_only_unreviewed_masks(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _segment(str(folder), "--engine", "classic")
    done = {i: (folder / f"img{i}.json").read_bytes() for i in range(3)}
    capsys.readouterr()
    _segment(str(folder), "--engine", "classic")
    assert "segmented 0 box(es)" in capsys.readouterr().out
    assert all((folder / f"img{i}.json").read_bytes() == done[i] for i in range(3))

    doc = read_labelme(folder / "img1.json")  # a person accepts the ball (Y)
    doc.annotations = [a.reviewed() if a.label == "ball" else a for a in doc.annotations]
    write_labelme(doc, folder / "img1.json")
    accepted = _shapes(folder / "img1.json")["ball"]
    assert _segment(str(folder), "--engine", "classic", "--overwrite") == EXIT_SOME_FAILED
    assert "segmented 5 box(es)" in capsys.readouterr().out  # every unreviewed mask, once
    again = _shapes(folder / "img1.json")
    assert again["ball"].polygons == accepted.polygons and not again["ball"].needs_review
    assert again["speck"].needs_review and again["speck"].rejected() is not None
    redone = _shapes(folder / "img0.json")["ball"]
    assert redone.needs_review and redone.rejected().bounds() == box_around(  # type: ignore[union-attr]
        disc_scene(centre=CENTRES[0], seed=0)[1]
    )


def test_an_interrupted_run_keeps_what_is_done_and_the_next_run_finishes(folder: Path) -> None:
    cancel = CancelToken()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            cancel.cancel()  # after the third box: img0's ball and speck, then img0's box outside

    engine = create_proposer("classic")
    first = segment_labelme(folder, engine, cancel=cancel, progress=progress)
    assert first.stopped and seen[-1] == (3, 8)  # 3 images x 2, the one outside, lost.json's
    assert first.segmented == 2 and first.written == [folder / "img0.json"]
    assert _shapes(folder / "img0.json")["ball"].needs_review
    assert _shapes(folder / "img1.json")["ball"].shape_type == "rectangle"  # not reached

    second = segment_labelme(folder, engine)
    assert not second.stopped and second.segmented == 4 and second.done_before == 2
    assert all(_shapes(folder / f"img{i}.json")["ball"].needs_review for i in range(3))


def test_ctrl_c_stops_after_the_current_box_writes_it_and_exits_130(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scubasteve.cli import segment as cli_segment

    calls = 0
    real = cli_segment._Bar.update

    def update(self, done: int, total: int) -> None:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        real(self, done, total)
        if calls == 1:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl+C once

    monkeypatch.setattr(cli_segment._Bar, "update", update)
    before = signal.getsignal(signal.SIGINT)
    assert _segment(str(folder), "--engine", "classic") == EXIT_INTERRUPTED
    out = capsys.readouterr()
    assert "stopping after the current box" in out.err and "interrupted" in out.out
    shapes = _shapes(folder / "img0.json")
    assert shapes["ball"].needs_review and shapes["speck"].shape_type == "rectangle"
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_an_output_folder_leaves_the_originals_alone_and_is_continued(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    out = tmp_path / "masks"
    assert _segment(str(folder), "--engine", "classic", "--out", str(out)) == EXIT_SOME_FAILED
    assert {p.name: p.read_bytes() for p in folder.glob("*.json")} == originals
    doc = read_labelme(out / "img2.json")
    assert doc.path == (folder / "img2.png").resolve() or doc.path.samefile(folder / "img2.png")
    assert {a.label for a in doc.annotations if a.needs_review} == {"ball", "speck"}
    capsys.readouterr()
    _segment(str(folder), "--engine", "classic", "--out", str(out))
    assert "skipped 6 box(es) segmented before" in capsys.readouterr().out


def test_an_engine_failing_on_one_box_costs_that_box_only(folder: Path) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.inner = create_proposer("classic")
            self.name, self.note, self.device = "flaky", "", "cpu"
            self.engines = [self]

        def set_image(self, image: np.ndarray) -> None:
            self.inner.set_image(image)

        def propose(self, box: Box, k: int = 10, **kw: object):  # type: ignore[no-untyped-def]
            if box.width < 5:
                raise RuntimeError("the model broke")
            return self.inner.propose(box, k, **kw)  # type: ignore[arg-type]

    summary = segment_labelme(folder, Flaky(), options=SegmentOptions())  # type: ignore[arg-type]
    assert summary.segmented == 3
    broke = [why for where, why in summary.failed if "(speck)" in where]
    assert broke == ["RuntimeError: the model broke"] * 3


def test_labelme_itself_reads_the_result(folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("labelme")
    import subprocess
    import sys

    from test_labelme_compat import LABELME_SCRIPT

    _segment(str(folder), "--engine", "classic")
    resaved = tmp_path / "resaved.json"
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", LABELME_SCRIPT, str(folder / "img1.json"), str(resaved)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((folder / "img1.json").read_text(encoding="utf-8"))["shapes"]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["file_shapes"] == ["polygon", "polygon"] == [s["shape_type"] for s in written]
    again = json.loads(resaved.read_text(encoding="utf-8"))["shapes"]
    for key in ("label", "points", "flags", REPLACES_KEY):  # the box survives a save in labelme
        assert [s.get(key) for s in again] == [s.get(key) for s in written], key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "no such folder or file"),
        (["{coco}"], "needs --out"),
        (["{folder}", "--images", "{folder}"], "--images is for a COCO source"),
        (["{folder}", "--out", "x.json"], "is a folder, not a .json file"),
        (["{empty}"], "no LabelMe files"),
        (["{folder}", "--engine", "magic"], "unknown engine"),
    ],
)
def test_commands_that_cannot_run_say_why(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    coco = tmp_path / "boxes.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    (tmp_path / "empty").mkdir()
    filled = [
        a.format(coco=coco, folder=folder, empty=tmp_path / "empty").replace(
            "nowhere", str(tmp_path / "nowhere")
        )
        for a in args
    ]
    assert _segment(*filled) == EXIT_INPUT_ERROR
    assert message in capsys.readouterr().err


def test_a_folder_without_boxes_is_done_at_once(tmp_path: Path) -> None:
    image, _ = _scene(tmp_path, 0)
    write_labelme(ImageDoc(image, 320, 240, []), image.with_suffix(".json"))
    assert _segment(str(tmp_path), "--engine", "classic") == EXIT_OK
