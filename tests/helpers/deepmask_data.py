"""Test helpers: small synthetic annotated images (in memory, or written as a LabelMe project)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from scubasteve.core.annotation import Annotation, ImageDoc

COLOURS = [(220, 60, 60), (60, 200, 90), (70, 90, 230), (230, 200, 40), (200, 80, 220)]


def shape_mask(k: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3))
    r = int(rng.integers(min(h, w) // 6, min(h, w) // 4))
    kind = k % 3
    if kind == 0:
        cv2.ellipse(m, (cx, cy), (r, int(r * 0.6)), int(rng.integers(0, 180)), 0, 360, 1, -1)
    elif kind == 1:
        cv2.rectangle(m, (cx - r, cy - r // 2), (cx + r, cy + r), 1, -1)
    else:
        pts = np.array([[cx - r, cy + r], [cx, cy - r], [cx + r, cy + r // 2]])
        cv2.fillPoly(m, [pts], 1)
    return m > 0


def shapes_image(
    k: int, h: int = 120, w: int = 160, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(image (h, w, 3) uint8, object mask (h, w) bool): one coloured shape on a dark texture."""
    rng = np.random.default_rng(seed * 1000 + k)
    img = cv2.GaussianBlur(rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8), (5, 5), 0)
    mask = shape_mask(k, h, w, rng)
    img[mask] = COLOURS[k % len(COLOURS)]
    return img, mask


def shapes_docs(n: int, h: int = 120, w: int = 160, seed: int = 0) -> list[ImageDoc]:
    docs = []
    for k in range(n):
        img, mask = shapes_image(k, h, w, seed)
        ann = Annotation.from_mask(["ellipse", "box", "triangle"][k % 3], mask)
        docs.append(ImageDoc(Path(f"shape{k}.png"), w, h, [ann], loader=lambda img=img: img))
    return docs


def write_labelme_project(
    folder: Path, n: int, h: int = 120, w: int = 160, annotate: bool = True, seed: int = 0
) -> Path:
    """A folder of PNG images with LabelMe JSON beside them (`annotate=False`: images only)."""
    from scubasteve.io.labelme import labelme_path_for, write_labelme

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        img, mask = shapes_image(k, h, w, seed)
        path = folder / f"img{k:02d}.png"
        cv2.imwrite(str(path), img[:, :, ::-1])
        anns = (
            [Annotation.from_mask(["ellipse", "box", "triangle"][k % 3], mask)] if annotate else []
        )
        if annotate:
            write_labelme(ImageDoc(path, w, h, anns), labelme_path_for(path))
    return folder
