"""Draw the Scuba Steve application icon and write it for every OS (PNG, Windows ICO, macOS ICNS).

Run from the repository root: `python scripts/make_icons.py`. The output is committed under
`resources/icons/`, so a build never needs to run this; rerun it only to change the icon.

The picture is the program in one glance: a dashed selection box around an object whose mask is
filled in, on deep water.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

#: Drawn this large, then scaled down, so that the small sizes stay smooth.
CANVAS = 1024
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
OUT_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"


def _water(size: int) -> Image.Image:
    """A rounded square filled with a vertical deep-blue gradient (RGBA)."""
    top, bottom = (20, 120, 190), (6, 36, 84)
    gradient = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        gradient.putpixel(
            (0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    gradient = gradient.resize((size, size))
    shape = Image.new("L", (size, size), 0)
    ImageDraw.Draw(shape).rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=255)
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    icon.paste(gradient, (0, 0), shape)
    return icon


def _bubbles(draw: ImageDraw.ImageDraw, size: int) -> None:
    for cx, cy, r in ((0.80, 0.20, 0.035), (0.86, 0.31, 0.025), (0.77, 0.37, 0.018)):
        x, y, rad = cx * size, cy * size, r * size
        draw.ellipse(
            (x - rad, y - rad, x + rad, y + rad), outline=(200, 235, 255, 230), width=size // 120
        )


def _object_mask(size: int) -> Image.Image:
    """The selected object: a rounded fish-like body with a tail (L mask)."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    s = size
    draw.ellipse((0.24 * s, 0.40 * s, 0.66 * s, 0.70 * s), fill=255)
    draw.polygon([(0.62 * s, 0.55 * s), (0.78 * s, 0.43 * s), (0.78 * s, 0.67 * s)], fill=255)
    return mask.filter(ImageFilter.GaussianBlur(s / 500))


def _dashed_box(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], size: int
) -> None:
    x0, y0, x1, y1 = box
    dash, gap, width = size / 22, size / 40, max(2, size // 55)
    for a, b, horizontal, fixed in (
        (x0, x1, True, y0),
        (x0, x1, True, y1),
        (y0, y1, False, x0),
        (y0, y1, False, x1),
    ):
        pos = a
        while pos < b:
            end = min(pos + dash, b)
            line = (pos, fixed, end, fixed) if horizontal else (fixed, pos, fixed, end)
            draw.line(line, fill=(255, 255, 255, 255), width=width)
            pos = end + gap


def draw_icon(size: int = CANVAS) -> Image.Image:
    """The icon as a square RGBA image of `size` pixels."""
    icon = _water(size)
    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    fill = Image.new("RGBA", (size, size), (255, 140, 60, 235))
    overlay.paste(fill, (0, 0), _object_mask(size))
    icon = Image.alpha_composite(icon, overlay)
    draw = ImageDraw.Draw(icon)
    eye = (0.33 * size, 0.52 * size, 0.025 * size)
    draw.ellipse(
        (eye[0] - eye[2], eye[1] - eye[2], eye[0] + eye[2], eye[1] + eye[2]), fill=(20, 30, 60, 255)
    )
    _dashed_box(draw, (0.17 * size, 0.32 * size, 0.85 * size, 0.78 * size), size)
    _bubbles(draw, size)
    return icon


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    big = draw_icon(CANVAS)
    big.resize((512, 512), Image.Resampling.LANCZOS).save(
        args.out / "scubasteve.png", optimize=True
    )
    big.resize((256, 256), Image.Resampling.LANCZOS).save(
        args.out / "scubasteve.ico", sizes=ICO_SIZES
    )
    big.save(args.out / "scubasteve.icns")
    for name in ("scubasteve.png", "scubasteve.ico", "scubasteve.icns"):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
