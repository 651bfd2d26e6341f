"""Hostile images, third round (issue 21): orientation that labelme reads differently, masks stored
with transparency, and the memory that 16-bit and palette+alpha images cost while converting."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from scubasteve.io import images
from scubasteve.io.labelme import read_labelme

HAS_LABELME = importlib.util.find_spec("labelme") is not None
needs_labelme = pytest.mark.skipif(not HAS_LABELME, reason="labelme not installed")

#: labelme's own reading, in a subprocess (labelme imports PyQt5, which must not meet PySide6):
#: each argument is an image file (read as labelme opens an image) or "mask:" and a base64 PNG
#: (read as labelme reads a mask shape); prints (height, width) and the pixels' SHA of each.
LABELME_READ = r"""
import hashlib, io, json, sys
import numpy as np, PIL.Image
from labelme import utils
from labelme._label_file import read_image_file
out = []
for arg in sys.argv[1:]:
    if arg.startswith("mask:"):
        arr = utils.img_b64_to_arr(arg[5:]).astype(bool)
    else:
        arr = np.asarray(PIL.Image.open(io.BytesIO(read_image_file(arg))).convert("RGB"))
    out.append([list(arr.shape[:2]), arr.astype(np.uint8).tolist()])
print(json.dumps(out))
"""


def _labelme_reads(*args: str) -> list[np.ndarray]:
    done = subprocess.run(
        [sys.executable, "-c", LABELME_READ, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [np.array(pixels, dtype=np.uint8) for _, pixels in json.loads(done.stdout)]


def _pattern(w: int = 40, h: int = 20) -> np.ndarray:
    """Red top-left corner, blue bottom-right: every rotation and mirror is told apart."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 4, : w // 4] = (255, 0, 0)
    rgb[h // 2 :, w // 2 :] = (0, 0, 255)
    return rgb


def _same_picture(ours: np.ndarray, theirs: np.ndarray) -> None:
    # labelme re-encodes a rotated or non-JPEG/PNG image as JPEG: compare on average, and the
    # corners, which tell every rotation and mirror apart
    assert ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs).mean() < 4
    for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert np.abs(ours[r, c].astype(int) - theirs[r, c]).max() < 40, (r, c)


def _tiff(path: Path, orientation: int) -> Path:
    Image.fromarray(_pattern()).save(path, format="TIFF", tiffinfo={0x0112: orientation})
    return path


_XMP_ROTATE = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)


# --- 1: TIFF orientation 5-8 ----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_size_agrees_with_its_pixels_for_every_orientation(
    tmp_path: Path, orientation: int
) -> None:
    path = _tiff(tmp_path / "a.tif", orientation)
    h, w = images.load_image(path).shape[:2]
    assert images.read_image_size(path) == (w, h)
    assert (w, h) == ((20, 40) if orientation >= 5 else (40, 20))


def test_rotated_tiff_labelme_polygon_is_read_whole_and_validates(tmp_path: Path) -> None:
    from scubasteve.io.dataset import validate_labelme_folder

    _tiff(tmp_path / "a.tif", 6)  # shown 20 wide, 40 high
    band = [[0, 0], [20, 0], [20, 40], [0, 40]]
    shape = {"label": "band", "points": band, "shape_type": "polygon"}
    doc = {"shapes": [shape], "imagePath": "a.tif", "imageData": None}
    (tmp_path / "a.json").write_text(json.dumps({**doc, "imageWidth": 20, "imageHeight": 40}))
    problems: list = []
    read = read_labelme(tmp_path / "a.json", problems)
    assert (read.width, read.height) == (20, 40) and not problems
    assert read.annotations[0].to_mask(40, 20).all()  # was squeezed to 20x20 of a 40x20 image
    assert not validate_labelme_folder(tmp_path).problems


@needs_labelme
def test_rotated_tiff_looks_as_in_labelme(tmp_path: Path) -> None:
    paths = [_tiff(tmp_path / f"{o}.tif", o) for o in range(1, 9)]
    for path, theirs in zip(paths, _labelme_reads(*map(str, paths)), strict=True):
        _same_picture(images.load_image(path), theirs)


# --- 2: orientation only in XMP -----------------------------------------------------------------


def test_jpeg_orientation_only_in_xmp_is_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    Image.fromarray(_pattern()).save(path, xmp=_XMP_ROTATE, quality=95)
    assert images.read_image_size(path) == (40, 20)
    assert images.load_image(path).shape == (20, 40, 3)


def test_exif_orientation_wins_over_xmp(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180; the XMP says 6 (rotate 90)
    Image.fromarray(_pattern()).save(path, xmp=_XMP_ROTATE, exif=exif, quality=95)
    assert images.read_image_size(path) == (40, 20)
    arr = images.load_image(path)
    assert arr.shape == (20, 40, 3) and arr[-1, -1, 0] > 200  # the red corner is now bottom right


@needs_labelme
def test_orientation_agrees_with_labelme_for_exif_and_xmp(tmp_path: Path) -> None:
    paths = []
    for orientation in range(1, 9):  # PNG with an eXIf chunk: lossless, so pixels compare exactly
        exif = Image.Exif()
        exif[0x0112] = orientation
        paths.append(tmp_path / f"exif{orientation}.png")
        Image.fromarray(_pattern()).save(paths[-1], exif=exif)
    paths.append(tmp_path / "xmp.jpg")
    Image.fromarray(_pattern()).save(paths[-1], xmp=_XMP_ROTATE, quality=100, subsampling=0)
    for path, theirs in zip(paths, _labelme_reads(*map(str, paths)), strict=True):
        ours = images.load_image(path)
        assert ours.shape == theirs.shape, path.name
        _same_picture(ours, theirs)
        assert images.read_image_size(path) == (ours.shape[1], ours.shape[0])


def test_tiff_with_orientation_only_in_xmp_size_agrees_with_pixels(tmp_path: Path) -> None:
    # Pillow's TIFF decoder applies an XMP orientation itself (and labelme shows that): the size
    # read from the header must say the same.
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[700] = _XMP_ROTATE
    info.tagtype[700] = 1
    path = tmp_path / "x.tif"
    Image.fromarray(_pattern()).save(path, tiffinfo=info)
    h, w = images.load_image(path).shape[:2]
    assert images.read_image_size(path) == (w, h)


# --- 3: mask shapes stored with transparency ------------------------------------------------------


def _mask_png(kind: str, mask: np.ndarray) -> bytes:
    """`mask` (bool) as a PNG the way other tools store masks with transparency."""
    on = mask.astype(np.uint8) * 255
    if kind == "palette+tRNS":  # index 0: transparent black, index 1: opaque white
        img = Image.fromarray(mask.astype(np.uint8), "P")
        img.putpalette([0, 0, 0, 255, 255, 255])
        img.info["transparency"] = 0
    elif kind == "LA white on clear":
        img = Image.fromarray(np.dstack([np.full_like(on, 255), on]), "LA")
    elif kind == "RGBA black on clear":  # the object opaque black: alpha is the mask
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[..., 3] = on
        img = Image.fromarray(rgba, "RGBA")
    elif kind == "RGBA white, opaque":  # colour is the mask, alpha all opaque
        img = Image.fromarray(np.dstack([on, on, on, np.full_like(on, 255)]), "RGBA")
    elif kind == "L 0/1":  # what labelme writes
        img = Image.fromarray(mask.astype(np.uint8), "L")
    elif kind == "16-bit 0/1":
        img = Image.fromarray(mask.astype(np.uint16))
    else:
        raise AssertionError(kind)
    buf = io.BytesIO()
    img.save(buf, format="PNG", **({"transparency": 0} if kind == "palette+tRNS" else {}))
    return buf.getvalue()


MASK_KINDS = [
    "palette+tRNS",
    "LA white on clear",
    "RGBA black on clear",
    "RGBA white, opaque",
    "L 0/1",
    "16-bit 0/1",
]


def _ring_mask() -> np.ndarray:
    mask = np.zeros((12, 16), bool)
    mask[2:10, 3:13] = True
    mask[4:8, 6:10] = False  # a hole, so filled and inverted masks both differ
    return mask


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_mask_shape_with_transparency_is_read_as_drawn(tmp_path: Path, kind: str) -> None:
    mask = _ring_mask()
    png = base64.b64encode(_mask_png(kind, mask)).decode()
    (tmp_path / "a.png").write_bytes(images.encode_png(np.zeros((30, 40, 3), np.uint8)))
    shape = {"label": "m", "points": [[5, 6], [20, 17]], "shape_type": "mask", "mask": png}
    data = {"shapes": [shape], "imagePath": "a.png", "imageData": None}
    (tmp_path / "a.json").write_text(json.dumps({**data, "imageWidth": 40, "imageHeight": 30}))
    ann = read_labelme(tmp_path / "a.json").annotations[0]
    assert ann.mask is not None and (ann.mask.x, ann.mask.y) == (5, 6)
    assert np.array_equal(ann.mask.mask, mask), kind


@needs_labelme
@pytest.mark.parametrize("kind", ["palette+tRNS", "L 0/1"])
def test_mask_with_transparency_reads_as_in_labelme(kind: str) -> None:
    mask = _ring_mask()
    png = base64.b64encode(_mask_png(kind, mask)).decode()
    (theirs,) = _labelme_reads("mask:" + png)
    assert np.array_equal(images.decode_mask_png(png), theirs.astype(bool))
    assert np.array_equal(theirs.astype(bool), mask)


# --- 15: memory while converting 16-bit and palette+alpha images ----------------------------------


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        arr = images.load_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert arr.shape[:2] == (1024, 2048)
    return peak


@pytest.mark.parametrize("mode", ["I;16", "P+alpha", "RGBA"])
def test_converting_deep_or_transparent_images_costs_little_beyond_the_result(
    tmp_path: Path, mode: str
) -> None:
    # tracemalloc sees numpy's and Python's allocations (the result, temporaries, `tobytes`
    # copies), not Pillow's own decoded image: the bound is on what the conversion adds.
    h, w = 1024, 2048
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 4096, (h, w), dtype=np.uint16))
    elif mode == "P+alpha":  # a palette whose entries have their own alpha (tRNS table)
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "P")
        img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tolist())
        img.info["transparency"] = bytes(range(256))
    else:
        img = Image.fromarray(rng.integers(0, 255, (h, w, 4), dtype=np.uint8), "RGBA")
    path = tmp_path / "a.png"
    img.save(
        path, compress_level=0, **({"transparency": bytes(range(256))} if mode == "P+alpha" else {})
    )
    # the (H, W, 3) result is 3 bytes per pixel, the strips' temporaries about 2 MB in all;
    # 19 (16-bit) and 6 bytes per pixel (with alpha) were measured here before the fix
    assert _peak_bytes(path) < 3 * h * w + 4 * 2**20


def test_strip_conversion_gives_the_same_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 4096, (300, 7), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    expected = (deep.astype(np.int64) * 255 // 4095).astype(np.uint8)
    assert np.array_equal(images.load_image(tmp_path / "deep.png")[..., 1], expected)
    rgba = rng.integers(0, 256, (300, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    over_white = Image.alpha_composite(
        Image.new("RGBA", (7, 300), (255, 255, 255, 255)), Image.fromarray(rgba, "RGBA")
    )
    got = images.load_image(tmp_path / "rgba.png")
    assert np.array_equal(got, np.asarray(over_white.convert("RGB")))
