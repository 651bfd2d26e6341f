"""Image loading: every common format and pixel mode to (H, W, 3) uint8 RGB, EXIF orientation applied.

Masks are drawn on the image as the user sees it, so orientation is applied everywhere: pixels, sizes
and thumbnails all agree (labelme users report masks rotated against photos from phones because a
tool skipped this). The orientation is labelme's: the EXIF tag, never one found only in XMP metadata
(TIFF: whatever Pillow's decoder applies, which is what labelme shows). LabelMe `mask` shapes are read
as masks (`decode_mask_png`), not as photos.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scubasteve.core.errors import InputError, os_error_problem
from scubasteve.core.files import check_regular_file

# Pillow refuses images above ~179 Mpx as "decompression bombs". Annotators do open 12,000 x 9,000
# (108 Mpx) aerial and microscopy images; allow up to 1 Gpx (about 3 GB as RGB) on purpose.
MAX_PIXELS = 1 << 30

_EXIF_ORIENTATION = 0x0112
#: EXIF orientation -> the transposition that shows the image upright (as `ImageOps.exif_transpose`).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}
#: Pixels converted to RGB at a time (a strip of rows), so that converting a large 16-bit or
#: transparent image costs little more than its (H, W, 3) result (docs/hostile-inputs.md).
STRIP_PIXELS = 1 << 16


def _open(source: Path | bytes, name: str | Path) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    if not isinstance(source, bytes):
        check_regular_file(source, "image")  # a FIFO would block, a device never end
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(source, bytes):
                return Image.open(io.BytesIO(source))
            return Image.open(source)
    except UnidentifiedImageError as exc:
        raise InputError(
            "not an image file Pillow can read (unknown or corrupt format)", name
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"image is larger than {MAX_PIXELS:,} pixels", name) from exc
    except OSError as exc:
        raise InputError(
            os_error_problem(exc, "cannot read the image", "image file"), name
        ) from exc


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8) that we apply to the decoded pixels ourselves; 1 for none.

    labelme's convention: the EXIF tag only. Pillow's `getexif()` falls back to an orientation
    found only in XMP metadata, which labelme ignores, so the EXIF block is read here directly.
    TIFF: Pillow's decoder applies the orientation itself, so nothing is left to do. Read before
    the pixels are decoded, as `read_image_size` reads it, so that sizes and pixels agree.
    """
    if img.format == "TIFF":
        return 1
    raw = img.info.get("exif")
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        value = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # broken EXIF blocks are common; they must not stop the image
        return 1
    return value if value in _UPRIGHT else 1


def _swaps_axes(img: Image.Image) -> bool:
    """Whether the image as shown is `img.size` with width and height swapped (header only)."""
    if img.format != "TIFF":
        return _orientation(img) in _SWAPS_AXES
    # Pillow's TIFF plugin reports the EXIF tag's rotated size already, and its decoder also
    # applies an orientation found only in XMP (not yet in `img.size`); labelme shows the same.
    try:
        tag = img.tag_v2.get(_EXIF_ORIENTATION)  # type: ignore[attr-defined]
        shown = img.getexif().get(_EXIF_ORIENTATION)
    except Exception:
        return False
    return tag not in _SWAPS_AXES and shown in _SWAPS_AXES


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (orientation applied as `load_image` does), from the header."""
    with _open(Path(path), path) as img:
        w, h = img.size
        if _swaps_axes(img):
            w, h = h, w
    return int(w), int(h)


def _strips(img: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    """(first row, image strip) pairs covering `img`, each about `STRIP_PIXELS` pixels; one at a
    time, so that only one strip's copy exists at once."""
    width, height = img.size
    rows = max(1, STRIP_PIXELS // max(width, 1))
    for y in range(0, height, rows):
        yield y, img.crop((0, y, width, min(y + rows, height)))


def _deep_range(img: Image.Image) -> tuple[float, float]:
    """(low, full scale) for converting 16/32-bit integer or float pixels to 0..255.

    Integers: 0 and the full range of the smallest bit depth that holds the data (8, 10, 12, 14,
    16, 24 or 32 bits), so that a 12-bit microscope image is not left nearly black. Floats: the
    minimum and maximum (NaN and infinity count as 0).
    """
    lo, hi = np.inf, -np.inf
    for _, strip in _strips(img):
        data = _deep_values(np.asarray(strip))
        if data.size:
            lo, hi = min(lo, float(data.min())), max(hi, float(data.max()))
    if img.mode == "F":
        return (lo, hi - lo) if hi > lo else (0.0, 0.0)
    peak = int(hi) if np.isfinite(hi) else 0
    for bits in (8, 10, 12, 14, 16, 24, 32):
        if peak < (1 << bits):
            break
    return 0.0, float((1 << bits) - 1)


def _deep_values(arr: np.ndarray) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        return np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(arr.astype(np.int64), 0, None)


def _deep_strip_to_uint8(arr: np.ndarray, lo: float, full: float) -> np.ndarray:
    data = _deep_values(arr)
    if np.issubdtype(data.dtype, np.floating):
        scale = 255.0 / full if full > 0 else 0.0
        return ((data - lo) * scale).clip(0, 255).astype(np.uint8)
    return (data * 255 // int(full)).astype(np.uint8)


_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def to_rgb_array(img: Image.Image, name: str | Path = "<image>") -> np.ndarray:
    """Any Pillow image (orientation already applied) as an (H, W, 3) uint8 RGB array.

    Converted a strip of rows at a time into the result, so the conversion adds only about
    `STRIP_PIXELS` pixels' worth of temporaries to the 3 bytes per pixel of the result, whatever
    the mode (16-bit, float, palette with alpha). Transparent parts are shown over white, as image
    viewers do; deep integer and float data are scaled as `_deep_range` says.
    """
    mode = img.mode
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    try:
        deep = _deep_range(img) if mode in _DEEP_MODES else None
        transparent = mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
        for y, strip in _strips(img):
            rows = slice(y, y + strip.size[1])
            if deep is not None:
                out[rows] = _deep_strip_to_uint8(np.asarray(strip), *deep)[:, :, None]
            elif transparent:
                rgba = strip.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                out[rows] = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
            else:  # RGB, L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX
                out[rows] = np.asarray(strip if mode == "RGB" else strip.convert("RGB"))
    except OSError as exc:
        raise InputError(f"the image data is corrupt or truncated ({exc})", name) from exc
    return out


def _mask_from_image(img: Image.Image) -> np.ndarray:
    """A decoded mask image as an (H, W) bool mask.

    Where the PNG has transparency, alpha alone decides (opaque or partly opaque pixels are in
    the mask, whatever their colour); otherwise a pixel is in the mask when it is not black. So
    a palette mask with a transparent index 0 reads as labelme reads it (index != 0), and masks
    stored as white or black on a clear background are neither filled nor inverted.
    """
    mode = img.mode
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.size and alpha.min() < 255:
            return alpha > 0
        img, mode = rgba, rgba.mode  # all opaque: the colour decides
    direct = mode in ("1", "L", *_DEEP_MODES)  # values as stored, never scaled
    values = np.asarray(img if direct else img.convert("RGB"))
    return np.asarray(values.reshape(values.shape[0], values.shape[1], -1).any(axis=2))


def _load(img: Image.Image, name: str | Path) -> np.ndarray:
    orientation = _orientation(img)  # before decoding, as read_image_size reads it
    try:
        img.load()
    except OSError as exc:
        raise InputError(f"the image data is corrupt or truncated ({exc})", name) from exc
    except (Image.DecompressionBombError, ValueError) as exc:
        raise InputError(f"cannot decode the image ({exc})", name) from exc
    if orientation != 1:
        img = img.transpose(_UPRIGHT[orientation])
    return to_rgb_array(img, name)


def load_image(path: Path | str) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 RGB with EXIF orientation applied.

    Raises `InputError` naming the file for missing, unreadable, corrupt or truncated images.
    """
    path = Path(path)
    with _open(path, path) as img:
        return _load(img, path)


def decode_image_bytes(data: bytes, name: str | Path = "<embedded image>") -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, ...) as (H, W, 3) uint8 RGB, orientation applied."""
    with _open(data, name) as img:
        return _load(img, name)


def decode_base64_image(data: str, name: str | Path = "<imageData>") -> np.ndarray:
    """A LabelMe `imageData` string (base64 of an encoded image) as (H, W, 3) uint8 RGB."""
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"imageData is not valid base64 ({exc})", name) from exc
    return decode_image_bytes(raw, name)


def base64_image_size(data: str, name: str | Path = "<imageData>") -> tuple[int, int]:
    """(width, height) of a base64 `imageData` string, orientation applied, without full decoding."""
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"imageData is not valid base64 ({exc})", name) from exc
    with _open(raw, name) as img:
        w, h = img.size
        if _swaps_axes(img):
            w, h = h, w
    return int(w), int(h)


def decode_mask_png(data: str, name: str | Path = "<mask>") -> np.ndarray:
    """A LabelMe `mask` (base64 of a PNG) as an (H, W) bool mask, no orientation applied.

    Read as a mask, not as a photo (`_mask_from_image`): transparency and 16-bit values are
    taken as they are, never composited or scaled.
    """
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"not valid base64 ({exc})", name) from exc
    with _open(raw, name) as img:
        try:
            img.load()
            return _mask_from_image(img)
        except (OSError, ValueError) as exc:
            raise InputError(f"the mask data is corrupt or truncated ({exc})", name) from exc


def encode_png(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes (for embedded thumbnails and test fixtures)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
