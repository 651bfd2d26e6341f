"""Image loading: formats, pixel modes, EXIF orientation, bad files, very large images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scubasteve.core.errors import InputError
from scubasteve.io.images import load_image, read_image_size


def _pattern(w: int = 40, h: int = 30) -> np.ndarray:
    """An asymmetric RGB pattern: the top-left corner is red, so rotations are detectable."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 3, : w // 4] = (255, 0, 0)
    rgb[h // 2 :, w // 2 :, 2] = 200
    return rgb


@pytest.mark.parametrize(
    "fmt,ext", [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp"), ("JPEG", "jpg")]
)
def test_common_formats_load_as_rgb_uint8(tmp_path: Path, fmt: str, ext: str) -> None:
    path = tmp_path / f"img.{ext}"
    kwargs = {"quality": 95} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(_pattern()).save(path, format=fmt, **kwargs)
    arr = load_image(path)
    assert arr.shape == (30, 40, 3) and arr.dtype == np.uint8
    error = np.abs(arr.astype(int) - _pattern().astype(int))
    if fmt == "JPEG":  # lossy: compare on average
        assert error.mean() < 8
    else:
        assert error.max() == 0


@pytest.mark.parametrize(
    "orientation,expected_shape,red_corner",
    [
        (1, (30, 40), (0, 0)),
        (3, (30, 40), (29, 39)),
        (6, (40, 30), (0, 29)),
        (8, (40, 30), (39, 0)),
    ],
)
def test_exif_orientation_is_applied_to_pixels_and_size(
    tmp_path: Path, orientation: int, expected_shape: tuple[int, int], red_corner: tuple[int, int]
) -> None:
    path = tmp_path / "phone.jpg"
    img = Image.fromarray(_pattern())
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, exif=exif, quality=95)
    arr = load_image(path)
    assert arr.shape[:2] == expected_shape
    assert read_image_size(path) == (expected_shape[1], expected_shape[0])
    r, c = red_corner
    assert arr[r, c, 0] > 200 and arr[r, c, 1] < 60


def test_pixel_modes_become_rgb(tmp_path: Path) -> None:
    gray = np.arange(30 * 40, dtype=np.uint8).reshape(30, 40)
    cases = {
        "L": Image.fromarray(gray),
        "RGBA": Image.fromarray(np.dstack([_pattern(), np.full((30, 40), 255, np.uint8)])),
        "P": Image.fromarray(_pattern()).convert("P"),
        "CMYK": Image.fromarray(_pattern()).convert("CMYK"),
        "1": Image.fromarray(gray > 100),
    }
    for mode, img in cases.items():
        ext = "jpg" if mode == "CMYK" else "tif" if mode in ("1",) else "png"
        path = tmp_path / f"{mode}.{ext}"
        img.save(path)
        arr = load_image(path)
        assert arr.shape == (30, 40, 3) and arr.dtype == np.uint8, mode
    assert np.array_equal(load_image(tmp_path / "L.png")[..., 1], gray)


def test_transparent_pixels_show_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:5, :, :] = (0, 0, 255, 255)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png")
    assert tuple(arr[0, 0]) == (0, 0, 255) and tuple(arr[9, 9]) == (255, 255, 255)


def test_sixteen_bit_images_are_scaled_by_their_bit_depth(tmp_path: Path) -> None:
    twelve_bit = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 41).clip(0, 4095)
    Image.fromarray(twelve_bit).save(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png")
    assert arr[..., 0].max() == 255 * int(twelve_bit.max()) // 4095
    assert arr[..., 0].max() > 200  # not left nearly black by a 16-bit scale


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "not an image"),
        (b"hello, not an image", "not an image"),
    ],
)
def test_corrupt_files_raise_input_error_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_image(path)
    assert info.value.path == path


def test_truncated_jpeg_raises_input_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(
        buf, "JPEG"
    )
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match=r"truncated|corrupt"):
        load_image(path)


def test_missing_file_and_folder_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_non_ascii_names_load(tmp_path: Path) -> None:
    path = tmp_path / "фото 写真.png"
    Image.fromarray(_pattern()).save(path)
    assert load_image(path).shape == (30, 40, 3)


@pytest.mark.slow
def test_a_12000_by_9000_image_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    big = np.zeros((9000, 12000), np.uint8)
    big[::100] = 255
    Image.fromarray(big).save(path, compress_level=1)
    assert read_image_size(path) == (12000, 9000)
    arr = load_image(path)
    assert arr.shape == (9000, 12000, 3) and arr[100, 5, 0] == 255
