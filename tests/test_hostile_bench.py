"""The benchmarks read COCO and LabelMe through the project's readers (issue 21, item 7).

`bench/samples.py` had its own unchecked loader: bad entries gave tracebacks, an RLE `size` of 100
times the image ran for a minute at 6 GB, corrupt RLE strings and string coordinates were accepted,
images of another size than their entry were resized and scored, and objects that vanished at the
benchmark's scale were dropped without a word. Each is now that entry's problem, as in `validate`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from scubasteve.bench.proposals import evaluate_proposer
from scubasteve.bench.samples import load_coco_samples, load_labelme_samples
from scubasteve.cli import main
from scubasteve.core.errors import Problem
from scubasteve.io import images

W, H = 40, 30
SQUARE = [[5, 5, 20, 5, 20, 20, 5, 20]]


def _coco(folder: Path, anns: list, imgs: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    imgs = imgs if imgs is not None else [{"id": 1, "file_name": "a.png", "width": W, "height": H}]
    for img in imgs:
        if isinstance(img.get("file_name"), str):
            (folder / img["file_name"]).write_bytes(
                images.encode_png(np.zeros((H, W, 3), np.uint8))
            )
    full = [{"id": 100 + i, "image_id": 1, "category_id": 1, **a} for i, a in enumerate(anns)]
    data = {"images": imgs, "annotations": full, "categories": [{"id": 1, "name": "x"}]}
    path = folder / "c.json"
    path.write_text(json.dumps(data))
    return path


def _keys(sample_images: list) -> list[str]:
    return [s.key for si in sample_images for s in si.samples]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"bbox": [1, 1, 5, 5]}, "no segmentation"),
        ({"segmentation": [[1, 1, 5, 5]]}, "even number (>= 6)"),
        ({"segmentation": [[1, 1, 5, 5, 9]]}, "even number (>= 6)"),
        ({"segmentation": [["1", 1, 5, 5, 9, 9]]}, "flat list of numbers"),
        ({"segmentation": {"size": [H, W], "counts": "zz~"}}, "not a character"),
        ({"segmentation": {"size": [H, W], "counts": [5, 7]}}, "add up to"),
        ({"segmentation": {"size": "30x40", "counts": [W * H]}}, "'size'"),
        ({"segmentation": 7}, "neither a segmentation nor a bbox"),
        ({"segmentation": [[0, 0, 1e9, 0, 0, 5]]}, "far outside"),
    ],
)
def test_bad_entry_is_named_and_the_others_are_scored(
    tmp_path: Path, bad: dict, reason: str
) -> None:
    path = _coco(tmp_path, [{"segmentation": SQUARE}, bad])
    problems: list[Problem] = []
    got = load_coco_samples(path, tmp_path, problems=problems)
    assert _keys(got) == ["100"]
    where = "annotation id 101" if "bbox" in bad else "annotations[1]"
    assert reason in str(problems) and where in str(problems)


def test_rle_size_far_larger_than_the_image_is_refused_at_once(tmp_path: Path) -> None:
    huge = {"size": [100 * H, 100 * W], "counts": [100 * H * 100 * W]}
    path = _coco(tmp_path, [{"segmentation": SQUARE}, {"segmentation": huge}])
    problems: list[Problem] = []
    t0 = time.perf_counter()
    got = load_coco_samples(path, tmp_path, problems=problems)
    assert time.perf_counter() - t0 < 30  # a bound against the minute it took, not a timing
    assert _keys(got) == ["100"] and "differs from the image's" in str(problems)


def test_deeply_nested_or_broken_files_are_clear_errors(tmp_path: Path) -> None:
    from scubasteve.core.errors import InputError

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(InputError, match="nested"):
        load_coco_samples(deep, tmp_path)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"images": [7, {"id": "a"}], "annotations": {"a": 1}}))
    with pytest.raises(InputError, match="'annotations' must be a list"):
        load_coco_samples(wrong, tmp_path)


def test_an_image_of_another_size_than_its_entry_is_not_scored(tmp_path: Path) -> None:
    path = _coco(tmp_path, [{"segmentation": SQUARE}])
    (tmp_path / "a.png").write_bytes(images.encode_png(np.zeros((2 * H, 2 * W, 3), np.uint8)))
    got = load_coco_samples(path, tmp_path)

    class Proposer:
        name = "none"

        def set_image(self, image: np.ndarray) -> None:
            raise AssertionError("an image of the wrong size must not be scored")

        def propose(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return []

    report = evaluate_proposer(Proposer(), got)
    assert report.count == 0 and "80x60" in report.skipped_images["a.png"]


def test_an_object_that_vanishes_at_the_benchmark_scale_is_named(tmp_path: Path) -> None:
    big_w, big_h = 4000, 300
    imgs = [{"id": 1, "file_name": "a.png", "width": big_w, "height": big_h}]
    (tmp_path / "a.png").write_bytes(images.encode_png(np.zeros((big_h, big_w, 3), np.uint8)))
    sliver = [[10, 10, 11, 10, 11, 290, 10, 290]]  # 1 px wide: nothing left at 1/4 scale
    path = _coco(tmp_path, [{"segmentation": SQUARE}, {"segmentation": sliver}], imgs)
    (tmp_path / "a.png").write_bytes(images.encode_png(np.zeros((big_h, big_w, 3), np.uint8)))
    problems: list[Problem] = []
    got = load_coco_samples(path, tmp_path, max_side=1000, problems=problems)
    assert _keys(got) == ["100"]
    (vanished,) = problems
    assert vanished.severity == "warning" and "covers no pixel" in vanished.message
    assert "101" in vanished.where


def test_bench_proposals_reports_bad_entries_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_rle = {"segmentation": {"size": [H, W], "counts": "zz~"}}
    path = _coco(tmp_path, [{"segmentation": SQUARE}, bad_rle, {"bbox": [1, 1, 5, 5]}])
    code = main(["bench", "proposals", "--coco", str(path), "--images", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 1, out.err
    assert "| classic | 1 |" in out.out
    assert "annotations[1]" in out.err and "Traceback" not in out.err


def _labelme(folder: Path, stem: str, shapes: list) -> Path:
    (folder / f"{stem}.png").write_bytes(images.encode_png(np.zeros((H, W, 3), np.uint8)))
    data = {"shapes": shapes, "imagePath": f"{stem}.png", "imageData": None}
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({**data, "imageWidth": W, "imageHeight": H}))
    return path


def test_labelme_samples_name_bad_files_and_shapes(tmp_path: Path) -> None:
    good = {"label": "a", "points": [[5, 5], [20, 5], [20, 20]], "shape_type": "polygon"}
    strings = {"label": "a", "points": [["5", 5], [20, 5], [20, 20]], "shape_type": "polygon"}
    _labelme(tmp_path, "a", [good, strings])
    (tmp_path / "deep.json").write_text("[" * 100_000)
    _coco(tmp_path / "sub", [{"segmentation": SQUARE}])  # a COCO file in the folder
    problems: list[Problem] = []
    got = load_labelme_samples(tmp_path, problems=problems)
    assert [si.name for si in got] == ["a.json"] and len(got[0].samples) == 1
    text = str(problems)
    assert "number pairs" in text and "nested" in text and "a COCO file" in text
