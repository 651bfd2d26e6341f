"""Fixes for PixelLib 0.7.1's training path under current scikit-image, applied at training start.

PixelLib's `minimize_mask` resizes boolean masks with bilinear interpolation, which scikit-image
0.19+ refuses ("Interpolation is not defined with bool data type"), so every training step failed.
The replacement does the same thing on a float copy: bilinear resize of the box crop to the
mini-mask shape, rounded at 0.5.
"""

from __future__ import annotations

import numpy as np


def minimize_mask(bbox: np.ndarray, mask: np.ndarray, mini_shape: tuple[int, int]) -> np.ndarray:
    """(H, W, N) bool masks cropped to their (N, 4) y1, x1, y2, x2 boxes and resized to `mini_shape`."""
    import cv2

    mini = np.zeros((*mini_shape, mask.shape[-1]), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        crop = mask[y1:y2, x1:x2, i]
        if crop.size == 0:
            raise ValueError("an instance box has no area")
        resized = cv2.resize(
            crop.astype(np.float32), (mini_shape[1], mini_shape[0]), interpolation=cv2.INTER_LINEAR
        )
        mini[:, :, i] = resized >= 0.5
    return mini


def apply() -> None:
    """Install the fixes into PixelLib's modules (idempotent). Imports TensorFlow via PixelLib."""
    from scubasteve.inference.maskrcnn.tf_runtime import import_tensorflow

    import_tensorflow()
    from pixellib.instance import utils

    utils.minimize_mask = minimize_mask
