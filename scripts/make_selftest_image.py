"""Draw the small synthetic scene that `scubasteve --self-test` segments, with its true mask.

Run from the repository root: `python scripts/make_selftest_image.py`. Writes, under
`resources/selftest/`: `scene.png` (320x240 RGB), `scene_mask.png` (the object's true mask, 1-bit)
and `scene.json` (the box to drag around the object, XYXY pixel-edge coordinates, and its label).
Deterministic (fixed seed), drawn from scratch, so it ships under the project's own licence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 320, 240
OUT_DIR = Path(__file__).resolve().parents[1] / "resources" / "selftest"


def _ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0


def _triangle(h: int, w: int, pts: list[tuple[float, float]]) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    px, py = xx + 0.5, yy + 0.5
    inside = np.ones((h, w), dtype=bool)
    sign = None
    for (x0, y0), (x1, y1) in zip(pts, [*pts[1:], pts[0]], strict=True):
        cross = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
        side = cross >= 0
        if sign is None:
            sign = side
        inside &= side == sign
    return inside


def draw_scene(seed: int = 7) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """(image HxWx3 uint8 RGB, object mask HxW bool, box XYXY ints) of the synthetic scene."""
    rng = np.random.default_rng(seed)
    h, w = HEIGHT, WIDTH
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Water: a blue vertical gradient with slow ripples and a little sensor noise.
    ripple = 8 * np.sin(xx / 23.0 + yy / 41.0) + 5 * np.sin(yy / 13.0)
    base = np.stack(
        [30 + 0.10 * yy + ripple, 110 + 0.15 * yy + ripple, 170 - 0.10 * yy + ripple], axis=-1
    )
    image = base + rng.normal(0, 4, size=base.shape)
    # A sandy floor along the bottom and a green rock (a distractor reaching into the box).
    sand = yy > 205 + 6 * np.sin(xx / 30.0)
    image[sand] = np.array([194, 170, 120]) + rng.normal(0, 6, size=(int(sand.sum()), 3))
    rock = _ellipse(h, w, 250, 180, 40, 26)
    image[rock] = np.array([70, 120, 60]) + rng.normal(0, 7, size=(int(rock.sum()), 3))
    # The object: an orange fish (body and tail), shaded from top to bottom.
    body = _ellipse(h, w, 140, 115, 62, 38)
    tail = _triangle(h, w, [(190, 115), (232, 80), (232, 150)])
    fish = body | tail
    shade = (1.0 - (yy - 77) / 200.0)[..., None]
    orange = np.array([240, 130, 40], dtype=np.float32) * shade
    image = np.where(fish[..., None], orange + rng.normal(0, 5, size=image.shape), image)
    eye = _ellipse(h, w, 105, 105, 6, 6)
    image[eye] = (20, 25, 40)  # the eye is part of the fish: inside its outline
    rgb = np.clip(image, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(fish)
    margin = 12
    box = (
        int(xs.min()) - margin,
        int(ys.min()) - margin,
        int(xs.max()) + 1 + margin,
        int(ys.max()) + 1 + margin,
    )
    return rgb, fish, box


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rgb, mask, box = draw_scene()
    Image.fromarray(rgb).save(args.out / "scene.png", optimize=True)
    Image.fromarray(mask).convert("1").save(args.out / "scene_mask.png", optimize=True)
    meta = {"label": "fish", "box": list(box), "width": WIDTH, "height": HEIGHT}
    (args.out / "scene.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: scene.png, scene_mask.png, scene.json (box {box})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
