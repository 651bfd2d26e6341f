"""Synthetic scenes with known objects, and checks shared by the proposal-engine tests."""

from __future__ import annotations

import cv2
import numpy as np

from scubasteve.core.geometry import Box, mask_bbox
from scubasteve.inference.base import Proposal, patch_iou


def textured_background(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8: smooth greenish-grey noise, like grass or a table top."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    base = np.array([90, 120, 80], np.float32)
    return np.clip(base + 18 * noise, 0, 255).astype(np.uint8)


def disc_scene(
    h: int = 240,
    w: int = 320,
    centre: tuple[int, int] = (150, 120),
    radius: int = 50,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on a textured background: (image (h, w, 3) uint8, true mask (h, w) bool)."""
    image = textured_background(h, w, seed)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, centre, radius, 1, -1)
    image[mask.astype(bool)] = (200, 40, 40)
    return image, mask.astype(bool)


def snowman_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two touching discs of the same colour: (image, upper disc mask, lower disc mask)."""
    image = textured_background(260, 240, seed=3)
    upper = np.zeros(image.shape[:2], np.uint8)
    lower = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(upper, (120, 80), 40, 1, -1)
    cv2.circle(lower, (120, 170), 55, 1, -1)
    both = (upper | lower).astype(bool)
    image[both] = (230, 230, 235)
    return image, upper.astype(bool) & ~lower.astype(bool), lower.astype(bool)


def box_around(mask: np.ndarray, grow: float = 0.05) -> Box:
    tight = mask_bbox(mask)
    assert tight is not None
    return tight.grow(grow)


def full_iou(p: Proposal, mask: np.ndarray) -> float:
    full = p.patch.to_full(*mask.shape)
    union = np.count_nonzero(full | mask)
    return np.count_nonzero(full & mask) / union if union else 1.0


def assert_valid_proposals(
    props: list[Proposal], h: int, w: int, k: int, engine: str, distinct: bool = True
) -> None:
    """Shape, dtype, inside the image, sorted scores, no near-duplicates, at most k.

    `distinct=False` skips the near-duplicate check (edits of a large mask overlap it by far
    more than 0.9 and are told apart by what they change).
    """
    assert 1 <= len(props) <= k
    for p in props:
        assert p.patch.mask.dtype == bool and p.patch.mask.ndim == 2
        assert p.area > 0
        assert p.patch.x >= 0 and p.patch.y >= 0
        assert p.patch.x + p.patch.width <= w and p.patch.y + p.patch.height <= h
        assert p.engine == engine
        assert np.isfinite(p.score)
    scores = [p.score for p in props]
    assert scores == sorted(scores, reverse=True)
    for i, a in enumerate(props if distinct else []):
        for b in props[i + 1 :]:
            assert patch_iou(a.patch, b.patch) <= 0.9
