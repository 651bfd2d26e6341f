"""Fuzzing the readers, `validate`, the geometry functions and eval's results reader (issue 16).

The only allowed outcomes are a result or the project's own errors (`InputError`; `ValueError` for
the documented argument checks of the core geometry functions). Anything else (another exception,
a crash, a hang) fails. Whatever a reader accepts must also be written back and read again to the
same document.

Every property runs twice: with a small fixed budget in the normal test run (derandomized, so CI
is deterministic and takes seconds), and with a large budget as a slow test that runs only when
SCUBASTEVE_FUZZ_LONG=1 is set (`SCUBASTEVE_FUZZ_LONG=1 pytest tests/test_fuzz_inputs.py -m slow`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scubasteve.core.clipping import clip_ring
from scubasteve.core.errors import InputError, Problem
from scubasteve.core.geometry import Polygon, mask_to_polygons, polygons_to_mask
from scubasteve.evaluation.mask_ap import read_side
from scubasteve.io import images
from scubasteve.io.coco import coco_dict, read_coco
from scubasteve.io.dataset import validate_coco, validate_labelme_folder
from scubasteve.io.labelme import labelme_dict, read_labelme, write_labelme

W, H = 24, 16
_COMMON: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
FAST = settings(max_examples=25, **_COMMON)
LONG = settings(max_examples=1500, **_COMMON)
_long_only = pytest.mark.skipif(
    os.environ.get("SCUBASTEVE_FUZZ_LONG") != "1", reason="set SCUBASTEVE_FUZZ_LONG=1"
)


def _both(strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> tuple[Any, Any]:
    """The property as a fast test and a long (slow, opt-in) test."""
    fast = FAST(given(strategy)(check))
    long = pytest.mark.slow(_long_only(LONG(given(strategy)(check))))
    return fast, long


# --- strategies --------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-50, 80),
    st.floats(-50, 80),
    st.sampled_from([1e7, 1e8, -1e12, 1e308, float("nan"), float("inf"), 10**400, 2**63]),
)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
point = st.one_of(st.lists(numbers, min_size=2, max_size=2), junk)
points = st.one_of(st.lists(point, min_size=0, max_size=8), junk)
shape = st.one_of(
    st.fixed_dictionaries(
        {
            "label": st.one_of(st.sampled_from(["a", "b", ""]), junk),
            "points": points,
            "shape_type": st.one_of(
                st.sampled_from(["polygon", "rectangle", "circle", "line", "point", "mask"]), junk
            ),
        },
        optional={
            "group_id": st.one_of(st.none(), st.integers(0, 3), junk),
            "flags": st.one_of(st.dictionaries(st.text(max_size=3), st.booleans()), junk),
            "description": junk,
            "mask": junk,
            "other": junk,
        },
    ),
    junk,
)
labelme_doc = st.one_of(
    st.fixed_dictionaries(
        {"shapes": st.one_of(st.lists(shape, max_size=5), junk)},
        optional={
            "version": junk,
            "flags": st.one_of(st.dictionaries(st.text(max_size=3), junk, max_size=2), junk),
            "imagePath": st.one_of(st.sampled_from(["img.png", "../img.png", "none.png"]), junk),
            "imageData": junk,
            "imageHeight": st.one_of(st.just(H), numbers, junk),
            "imageWidth": st.one_of(st.just(W), numbers, junk),
            "extra": junk,
        },
    ),
    junk,
)
flat = st.lists(numbers, min_size=0, max_size=12)
rle = st.fixed_dictionaries(
    {
        "size": st.one_of(st.just([H, W]), junk),
        "counts": st.one_of(st.lists(st.integers(-5, 400), max_size=6), st.text(max_size=8), junk),
    }
)
coco_ann = st.fixed_dictionaries(
    {
        "image_id": st.one_of(st.integers(1, 3), junk),
        "category_id": st.one_of(st.integers(1, 3), junk),
    },
    optional={
        "id": junk,
        "segmentation": st.one_of(st.lists(flat, max_size=2), rle, junk),
        "bbox": st.one_of(st.lists(numbers, min_size=4, max_size=4), junk),
        "score": junk,
        "iscrowd": junk,
    },
)
coco_img = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(1, 3), junk),
        "file_name": st.one_of(st.sampled_from(["img.png", "a/img.png", "..", ""]), junk),
        "width": st.one_of(st.just(W), numbers, junk),
        "height": st.one_of(st.just(H), numbers, junk),
    }
)
coco_doc = st.one_of(
    st.fixed_dictionaries(
        {"images": st.lists(coco_img, max_size=3)},
        optional={
            "annotations": st.one_of(st.lists(coco_ann, max_size=5), junk),
            "categories": st.one_of(
                st.lists(
                    st.fixed_dictionaries({"id": st.one_of(st.integers(1, 3), junk), "name": junk}),
                    max_size=3,
                ),
                junk,
            ),
            "info": junk,
        },
    ),
    junk,
)


def _folder() -> tempfile.TemporaryDirectory[str]:
    tmp = tempfile.TemporaryDirectory()
    png = images.encode_png(np.zeros((H, W, 3), np.uint8))
    (Path(tmp.name) / "img.png").write_bytes(png)
    return tmp


def _dump(path: Path, value: Any) -> None:
    try:
        path.write_text(json.dumps(value))
    except (ValueError, OverflowError):
        path.write_text(repr(value))  # not JSON at all: the reader must say so


# --- properties ----------------------------------------------------------------------------------


def check_labelme(value: Any) -> None:
    with _folder() as tmp:
        path = Path(tmp) / "img.json"
        _dump(path, value)
        try:
            doc = read_labelme(path, [])
        except InputError:
            return
        write_labelme(doc, path)  # whatever is read can be written
        first = path.read_text()
        problems: list[Problem] = []
        again = read_labelme(path, problems)
        assert len(again.annotations) == len(doc.annotations)
        assert len(again.unreadable_shapes) == len(doc.unreadable_shapes)
        assert labelme_dict(again, path) == json.loads(first)  # the round trip is stable
        validate_labelme_folder(Path(tmp))


def check_coco(value: Any) -> None:
    with _folder() as tmp:
        path = Path(tmp) / "c.json"
        _dump(path, value)
        try:
            data = read_coco(path, Path(tmp), [])
        except InputError:
            return
        json.dumps(coco_dict(data.docs), allow_nan=False)  # what was read can be exported
        validate_coco(path, Path(tmp))


def check_results(results: Any) -> None:
    with _folder() as tmp:
        gt = Path(tmp) / "gt.json"
        imgs = [{"id": i, "file_name": f"{i}.png", "width": W, "height": H} for i in (1, 2, 3)]
        cats = [{"id": i, "name": f"c{i}"} for i in (1, 2, 3)]
        gt.write_text(json.dumps({"images": imgs, "annotations": [], "categories": cats}))
        pred = Path(tmp) / "pred.json"
        _dump(pred, results)
        try:
            docs = read_side(pred, [], gt=gt)
        except InputError:
            return
        if isinstance(results, list):
            assert len(docs) == 3


def check_polygons_to_mask(args: tuple[list[Any], int, int]) -> None:
    rings, h, w = args
    try:
        polygons = [Polygon(np.asarray(r, dtype=np.float64).reshape(-1, 2)) for r in rings]
        mask = polygons_to_mask(polygons, h, w)
    except (ValueError, OverflowError):  # OverflowError: Python ints above the float range
        return
    assert mask.shape == (h, w) and mask.dtype == bool


def check_clip(ring: list[list[float]]) -> None:
    clipped = clip_ring(np.asarray(ring, dtype=np.float64).reshape(-1, 2), -1, -1, 9, 9)
    if np.isfinite(ring).all() and len(clipped):
        assert clipped.min() >= -1 - 1e-9 and clipped.max() <= 9 + 1e-9


def check_mask_round_trip(args: tuple[np.ndarray, float]) -> None:
    mask, tolerance = args
    back = polygons_to_mask(mask_to_polygons(mask, tolerance), *mask.shape)
    assert np.array_equal(back, mask)


results = st.one_of(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "image_id": st.one_of(st.integers(0, 3), junk),
                    "category_id": st.one_of(st.integers(0, 3), junk),
                },
                optional={"segmentation": st.one_of(st.lists(flat, max_size=2), rle, junk)},
                # "score" is drawn below so that NaN and junk scores are common
            ).flatmap(lambda d: st.builds(lambda s: {**d, "score": s}, junk)),
            junk,
        ),
        max_size=4,
    ),
    junk,
)
coord = st.one_of(st.floats(-30, 60), st.sampled_from([1e9, -1e308, float("nan"), float("inf")]))
rings = st.lists(st.lists(st.tuples(coord, coord), min_size=0, max_size=7), max_size=3)
sizes = st.tuples(rings, st.integers(-1, 20), st.integers(-1, 20))
finite_ring = st.lists(
    st.tuples(st.floats(-1e300, 1e300), st.floats(-1e300, 1e300)), min_size=1, max_size=8
)
masks = st.tuples(
    st.integers(1, 12).flatmap(
        lambda h: st.integers(1, 12).flatmap(
            lambda w: st.lists(st.booleans(), min_size=h * w, max_size=h * w).map(
                lambda bits: np.array(bits, dtype=bool).reshape(h, w)
            )
        )
    ),
    st.sampled_from([0.0, 0.5, 1.0]),
)

test_labelme_reader_fuzz, test_labelme_reader_fuzz_long = _both(labelme_doc, check_labelme)
test_coco_reader_fuzz, test_coco_reader_fuzz_long = _both(coco_doc, check_coco)
test_results_reader_fuzz, test_results_reader_fuzz_long = _both(results, check_results)
test_polygons_to_mask_fuzz, test_polygons_to_mask_fuzz_long = _both(sizes, check_polygons_to_mask)
test_clip_ring_fuzz, test_clip_ring_fuzz_long = _both(finite_ring, check_clip)
test_mask_round_trip_fuzz, test_mask_round_trip_fuzz_long = _both(masks, check_mask_round_trip)


# --- names (issue 21): every path-like and name-like string a file or the command line holds ------

special_names = st.sampled_from(
    [
        "", ".", "..", "/", "\\", "a/../b.png", "C:\\x\\y.png", "/abs/x.png", "~/x.png", "CON",
        "aux.png", "x" * 255, "x" * 256, "é" * 130, "a\0b", "a\ud800", "\udfff", "caf\udce9.png",
        " x ", "x.", "\u202eexe.png", "a\nb", "a\tb", "*?<>|", "${HOME}", "x.json", "x.png.json",
        "dog\u200b", "cafe\u0301", "1" * 5000, "\ufeffa",
    ]
)  # fmt: skip
name = st.one_of(
    special_names,
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates and controls too
    st.lists(special_names, min_size=2, max_size=3).map("/".join),
)


def check_names(names: tuple[str, str, str]) -> None:
    """Names as labels, image paths, COCO file names and categories, and output paths: a result,
    the project's own errors, or exit status 0/1/2 from the CLI, never anything else."""
    from scubasteve.cli import main
    from scubasteve.io.dataset import coco_to_labelme, labelme_to_coco

    label, path_name, out_name = names
    with _folder() as tmp:
        root = Path(tmp)
        shape = {"label": label, "points": [[1, 1], [9, 1], [9, 9]], "shape_type": "polygon"}
        doc = {"shapes": [shape], "imagePath": path_name, "imageData": None, "flags": {label: True}}
        labelme = root / "img.json"
        labelme.write_text(json.dumps({**doc, "imageHeight": H, "imageWidth": W, label: path_name}))
        try:
            read = read_labelme(labelme, [])
        except InputError:
            read = None
        if read is not None:
            write_labelme(read, labelme)
            read_labelme(labelme, [])
            with contextlib.suppress(InputError):
                write_labelme(read, root / f"{out_name}.json")
        validate_labelme_folder(root)
        for target in (root / "out.json", root / f"{out_name}.json"):
            with contextlib.suppress(InputError):
                labelme_to_coco(root, target, overwrite=True)
        imgs = [{"id": 1, "file_name": path_name, "width": W, "height": H}]
        ann = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]]}
        coco = {"images": imgs, "annotations": [ann], "categories": [{"id": 1, "name": label}]}
        coco_path = root / "c.json"
        coco_path.write_text(json.dumps(coco))
        read_coco(coco_path, root, [])
        validate_coco(coco_path, root)
        for folder in (root / "labelme", root / out_name):
            with contextlib.suppress(InputError):
                coco_to_labelme(coco_path, folder, overwrite=True)
        for args in (["validate", path_name], ["convert", str(coco_path), str(root / out_name)]):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse's usage error: a name that looks like an option
                code = exc.code
            assert code in (0, 1, 2), args


test_names_fuzz, test_names_fuzz_long = _both(st.tuples(name, name, name), check_names)
