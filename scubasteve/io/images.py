"""Image loading: every common format and pixel mode to (H, W, 3) uint8 RGB, EXIF orientation applied.

Masks are drawn on the image as the user sees it, so orientation is applied everywhere: pixels, sizes
and thumbnails all agree (labelme users report masks rotated against photos from phones because a
tool skipped this).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from scubasteve.core.errors import InputError, os_error_problem

# Pillow refuses images above ~179 Mpx as "decompression bombs". Annotators do open 12,000 x 9,000
# (108 Mpx) aerial and microscopy images; allow up to 1 Gpx (about 3 GB as RGB) on purpose.
MAX_PIXELS = 1 << 30

_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


def _open(source: Path | bytes, name: str | Path) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
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
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # broken EXIF blocks are common; they must not stop the image
        return 1


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), reading only the file header."""
    with _open(Path(path), path) as img:
        w, h = img.size
        if _orientation(img) in _TRANSPOSING_ORIENTATIONS:
            w, h = h, w
    return int(w), int(h)


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Integer or float data of more than 8 bits, linearly to 0..255.

    Integers are scaled by the full range of the smallest bit depth that holds the data (8, 10, 12,
    14 or 16 bits), so a 12-bit microscope image is not left nearly black. Floats are min-max scaled.
    """
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(finite.min()), float(finite.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return ((finite - lo) * scale).clip(0, 255).astype(np.uint8)
    data = arr.astype(np.int64) if arr.dtype != np.int64 else arr
    data = np.clip(data, 0, None)
    peak = int(data.max()) if data.size else 0
    for bits in (8, 10, 12, 14, 16, 24, 32):
        if peak < (1 << bits):
            break
    full = (1 << bits) - 1
    scaled: np.ndarray = data * 255 // full
    return scaled.astype(np.uint8)


def to_rgb_array(img: Image.Image, name: str | Path = "<image>") -> np.ndarray:
    """Any Pillow image (orientation already applied) as an (H, W, 3) uint8 RGB array."""
    mode = img.mode
    try:
        if mode == "RGB":
            return np.asarray(img)
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            gray = _scale_to_uint8(np.asarray(img))
            return np.repeat(gray[:, :, None], 3, axis=2)
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            mode == "P" and "transparency" in img.info
        ):
            # Transparent parts are shown over white, as image viewers do.
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB"))  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX
    except OSError as exc:
        raise InputError(f"the image data is corrupt or truncated ({exc})", name) from exc


def _load(img: Image.Image, name: str | Path) -> np.ndarray:
    try:
        img.load()
    except OSError as exc:
        raise InputError(f"the image data is corrupt or truncated ({exc})", name) from exc
    except (Image.DecompressionBombError, ValueError) as exc:
        raise InputError(f"cannot decode the image ({exc})", name) from exc
    if _orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
    arr = to_rgb_array(img, name)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
        if not arr.flags.writeable:
            arr = arr.copy()
    return arr


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
        if _orientation(img) in _TRANSPOSING_ORIENTATIONS:
            w, h = h, w
    return int(w), int(h)


def encode_png(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes (for embedded thumbnails and test fixtures)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
