"""Tiled pre-annotation of large images (issue 22, item 7): the plan, the merge, the workflow.

The stand-in detector of `helpers/blobs.py` finds objects as a network would (one too small in
what it sees is missed, one cut by the edge of its view comes back cut, masks come back at full
resolution), so these tests run the real tiling and merge code in milliseconds, without TensorFlow.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from helpers.blobs import BLUE, RED, BlobDetector, scene
from PIL import Image

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box, mask_iou
from scubasteve.inference.maskrcnn import tiling
from scubasteve.inference.maskrcnn.instances import Instance
from scubasteve.inference.maskrcnn.tiling import (
    AUTO_FROM,
    AUTO_TILE,
    OVERLAP,
    detect_image,
    parse_tile,
    plan_views,
)
from scubasteve.inference.preannotation import annotate_images
from scubasteve.io.labelme import read_labelme


def truth(width: int, height: int, box: Box) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)] = True
    return mask


def only(instances: list[Instance], label: str) -> Instance:
    mine = [i for i in instances if i.label == label]
    assert len(mine) == 1, f"expected one {label}, got {len(mine)}: {[i.box for i in mine]}"
    return mine[0]


# --- the plan ---------------------------------------------------------------------------------


def test_a_12000_by_9000_photo_is_seen_whole_and_in_overlapping_tiles_of_a_photo_size() -> None:
    views = plan_views(12000, 9000, 1024)
    whole, tiles = views[0], views[1:]
    assert whole.whole and whole.size == (1024, 768)
    assert len(tiles) == 15 * 11
    assert all(
        (t.width, t.height) == (AUTO_TILE, AUTO_TILE) and t.size == (1024, 1024) for t in tiles
    )
    covered = np.zeros((9000, 12000), np.uint8)
    for t in tiles:
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert covered.min() >= 1
    xs = sorted({t.x0 for t in tiles})
    assert all(b - a <= AUTO_TILE * (1 - OVERLAP) for a, b in itertools.pairwise(xs))
    assert max(t.x1 for t in tiles) == 12000 and max(t.y1 for t in tiles) == 9000


def test_tiles_larger_than_the_input_are_shrunk_to_it_and_others_are_not() -> None:
    views = plan_views(3000, 2000, 512, tile=1500)
    assert views[0].size == (512, 341)
    assert all(v.size == (512, 512) for v in views[1:])
    assert all(v.size == (v.width, v.height) for v in plan_views(3000, 2000, 512, tile=400)[1:])


@pytest.mark.parametrize(
    ("given", "expected"), [("auto", "auto"), ("OFF", "off"), ("2048", 2048), (640, 640)]
)
def test_tile_setting_accepts_auto_off_and_a_side(given: object, expected: object) -> None:
    assert parse_tile(given) == expected


@pytest.mark.parametrize("given", ["0", "32", "big", "-1024", ""])
def test_a_bad_tile_setting_is_an_input_error_saying_what_is_accepted(given: str) -> None:
    with pytest.raises(InputError, match="auto, off or a tile side of at least 64"):
        parse_tile(given)


def test_an_image_exactly_at_the_threshold_goes_to_the_network_whole_and_unchanged() -> None:
    detector = BlobDetector(speed=1024)
    at = scene(AUTO_FROM, 300, [(Box(100, 100, 300, 200), RED)])
    found = detect_image(detector, at)
    assert detector.calls == [((300, AUTO_FROM), None)]  # one call, PixelLib resizes as always
    assert len(found) == 1
    detector.calls.clear()
    above = scene(AUTO_FROM + 1, 300, [(Box(100, 100, 300, 200), RED)])
    found = detect_image(detector, above)
    assert len(detector.calls) == 1 + 5  # the whole image shrunk, then five tiles
    assert detector.calls[0] == ((75, 1024), (300, AUTO_FROM + 1))
    assert len(found) == 1


def test_an_untiled_huge_image_is_shrunk_here_not_by_pixellib() -> None:
    views = plan_views(12000, 9000, 1024, tile="off")
    assert len(views) == 1 and views[0].size == (1024, 768)
    assert plan_views(4000, 3000, 1024, tile="off")[0].size == (4000, 3000)


@pytest.mark.parametrize("size", [(1, 100000), (100000, 1)])
def test_a_one_pixel_thin_image_is_that_image_s_problem_and_nothing_runs(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    width, height = size
    path = tmp_path / "thin.png"
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(path)
    detector = BlobDetector()
    summary = annotate_images([(path, tmp_path / "thin.json")], detector)
    assert detector.calls == []
    assert summary.failed == [
        (path, f"PixelLib needs an image of at least 2x2 pixels, got {width}x{height}")
    ]
    assert not (tmp_path / "thin.json").exists()


def test_a_two_pixel_high_strip_of_100000_is_tiled_along_its_length() -> None:
    views = plan_views(100000, 2, 1024)
    assert views[0].size == (1024, 2)
    assert len(views) == 1 + 122 and all(v.height == 2 for v in views)
    detector = BlobDetector(speed=1024, min_side=1)
    rgb = scene(100000, 2, [(Box(50000, 0, 50300, 2), RED)])
    fig = only(detect_image(detector, rgb), "fig")
    assert (fig.patch.x, fig.patch.width) == (50000, 300)


# --- the merge --------------------------------------------------------------------------------


def test_a_small_object_cut_by_a_tile_edge_is_found_once_whole_at_full_resolution() -> None:
    # Tiles of 256 start at 0, 205, 410, ...; an object across the edge at x = 256.
    object_box = Box(220, 60, 300, 120)
    rgb = scene(1000, 800, [(object_box, RED)])
    detector = BlobDetector(min_side=30)  # the whole image shrunk to 256 shows it 20 px: missed
    found = detect_image(detector, rgb, 256)
    fig = only(found, "fig")
    assert mask_iou(fig.patch.to_full(800, 1000), truth(1000, 800, object_box)) > 0.98
    assert (fig.patch.width, fig.patch.height) == (80, 60)  # box-local, at full resolution


def test_an_object_larger_than_a_tile_is_one_instance() -> None:
    object_box = Box(100, 150, 800, 600)
    rgb = scene(1000, 800, [(object_box, BLUE)])
    date = only(detect_image(BlobDetector(), rgb, 256), "date")
    assert mask_iou(date.patch.to_full(800, 1000), truth(1000, 800, object_box)) > 0.97


def test_pieces_of_an_object_the_whole_view_missed_are_joined_across_tiles() -> None:
    object_box = Box(100, 150, 800, 600)
    rgb = scene(1000, 800, [(object_box, BLUE)])
    detector = BlobDetector(blind_to_shrunk=True)
    date = only(detect_image(detector, rgb, 256), "date")
    assert mask_iou(date.patch.to_full(800, 1000), truth(1000, 800, object_box)) > 0.99
    assert date.patch.box() == object_box


def test_an_object_seen_whole_in_several_overlapping_tiles_is_kept_once() -> None:
    object_box = Box(215, 215, 245, 245)  # inside the overlap of four tiles
    rgb = scene(1000, 800, [(object_box, RED)])
    detector = BlobDetector(min_side=8)
    fig = only(detect_image(detector, rgb, 256), "fig")
    assert fig.patch.box() == object_box


def test_objects_of_other_labels_or_apart_are_not_merged() -> None:
    a, b, c = Box(220, 60, 300, 120), Box(305, 60, 380, 120), Box(600, 500, 900, 700)
    rgb = scene(1000, 800, [(a, RED), (b, RED), (c, BLUE)])
    found = detect_image(BlobDetector(min_side=20), rgb, 256)
    figs = sorted((i.patch.box() for i in found if i.label == "fig"), key=lambda box: box.x0)
    assert figs == [a, b]
    assert only(found, "date").patch.box() == c


def test_a_tile_holding_an_object_whole_wins_over_the_coarse_whole_view() -> None:
    object_box = Box(420, 300, 560, 400)
    rgb = scene(1000, 800, [(object_box, RED)])
    fig = only(detect_image(BlobDetector(min_side=8), rgb, 256), "fig")
    assert fig.patch.box() == object_box  # the whole view's mask would be off by its 4x scale


# --- the workflow -----------------------------------------------------------------------------


def _folder(tmp_path: Path, n: int = 2) -> list[tuple[Path, Path]]:
    todo = []
    for i in range(n):
        path = tmp_path / f"big{i}.png"
        Image.fromarray(scene(1000, 800, [(Box(220, 60, 300, 120), RED)])).save(path)
        todo.append((path, tmp_path / f"big{i}.json"))
    return todo


def test_a_tiled_run_reports_each_tile_and_writes_full_resolution_shapes(tmp_path: Path) -> None:
    todo = _folder(tmp_path, 1)
    views: list[tuple[int, int]] = []
    summary = annotate_images(
        todo, BlobDetector(min_side=30), tile=256, view_progress=lambda d, t: views.append((d, t))
    )
    n = len(plan_views(1000, 800, 256, 256))
    assert views == [(i, n) for i in range(1, n + 1)]
    assert summary.written == [todo[0][0]]
    (shape,) = read_labelme(todo[0][1]).annotations
    assert shape.label == "fig" and shape.bounds() == Box(220, 60, 300, 120)


def test_a_cancel_stops_between_tiles_and_writes_nothing(tmp_path: Path) -> None:
    todo = _folder(tmp_path)
    detector = BlobDetector()
    token = CancelToken()

    def tile_done(done: int, total: int) -> None:
        if done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        annotate_images(todo, detector, tile=256, cancel=token, view_progress=tile_done)
    assert len(detector.calls) <= 4  # the view queued while the third was placed, at most
    assert not any(json_path.exists() for _, json_path in todo)


def test_untiled_images_still_go_to_the_network_as_they_are(tmp_path: Path) -> None:
    todo = _folder(tmp_path)
    detector = BlobDetector()
    summary = annotate_images(todo, detector)  # auto: 1000 px is far below the threshold
    assert detector.calls == [((800, 1000), None)] * 2
    assert len(summary.written) == 2


def test_the_run_record_names_the_tile_setting(tmp_path: Path) -> None:
    from scubasteve.inference.preannotation import run_info

    assert run_info(BlobDetector(), tile=512)["tile"] == 512
    assert run_info(BlobDetector())["tile"] == tiling.AUTO


def test_annotate_refuses_a_bad_tile_setting_before_loading_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scubasteve.cli import main

    _folder(tmp_path, 1)
    assert (
        main(["annotate", str(tmp_path), "--model", str(tmp_path / "none.h5"), "--tile", "9"]) == 2
    )
    assert "auto, off or a tile side of at least 64 pixels, got '9'" in capsys.readouterr().err


def test_a_huge_box_gets_its_mask_in_bands_without_a_float_copy_of_it() -> None:
    import tracemalloc

    from scubasteve.inference.maskrcnn.instances import MASK_THRESHOLD, mask_in_box, resize_mask

    small = np.random.default_rng(3).random((28, 28)).astype(np.float32)
    assert np.array_equal(mask_in_box(small, 300, 200), resize_mask(small, 300, 200) >= 0.5)
    whole = resize_mask(small, 9000, 12000) >= MASK_THRESHOLD
    tracemalloc.start()
    try:
        banded = mask_in_box(small, 9000, 12000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.count_nonzero(banded != whole) <= 10  # floating rounding at a few band edges
    assert peak < 1.5 * banded.nbytes  # the float32 mask would be 4x
