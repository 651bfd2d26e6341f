"""Training augmentation for Mask R-CNN in numpy and OpenCV (no imgaug).

PixelLib's augmentation path needs imgaug, and imgaug 0.4.0 fails to import under numpy 2
(`np.sctypes` was removed); see docs/adr/0402-training-fixes-and-own-augmentation.md. An `Augmentation` draws one random
`Transform` per sample and applies the same geometry to the image and to every instance mask, so masks
stay aligned; photometric changes touch the image only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transform:
    """One drawn augmentation. `matrix`: 2x3 affine map from source to output pixel coordinates
    (None: geometry unchanged). `gain`/`bias`: contrast and brightness. `blur`: Gaussian sigma."""

    matrix: np.ndarray | None = None
    gain: float = 1.0
    bias: float = 0.0
    blur: float = 0.0

    def image(self, image: np.ndarray) -> np.ndarray:
        """Apply to an (H, W, 3) uint8 image (bilinear, borders filled with grey)."""
        import cv2

        out = image
        if self.matrix is not None:
            h, w = image.shape[:2]
            out = cv2.warpAffine(
                out,
                self.matrix,
                (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(124, 116, 104),
            )
        if self.gain != 1.0 or self.bias != 0.0:
            out = np.clip(out.astype(np.float32) * self.gain + self.bias, 0, 255).astype(np.uint8)
        if self.blur > 0:
            out = cv2.GaussianBlur(out, (0, 0), self.blur)
        return out

    def masks(self, masks: np.ndarray) -> np.ndarray:
        """Apply the geometry to (H, W, N) bool instance masks (nearest neighbour)."""
        import cv2

        if self.matrix is None or masks.shape[2] == 0:
            return masks
        h, w = masks.shape[:2]
        out = np.empty_like(masks, dtype=bool)
        # OpenCV warps at most 4 channels at a time (512 for some builds); go channel by channel.
        for i in range(masks.shape[2]):
            out[:, :, i] = cv2.warpAffine(
                masks[:, :, i].astype(np.uint8), self.matrix, (w, h), flags=cv2.INTER_NEAREST
            ).astype(bool)
        return out


@dataclass(frozen=True)
class Augmentation:
    """Random flips, small rotation and scaling, brightness/contrast jitter and blur.

    Probabilities and ranges are per sample. `hflip`/`vflip`: flip probabilities. `rotate`: maximum
    angle in degrees. `scale`: (min, max) zoom. `brightness`: max added fraction of 255. `contrast`:
    max relative gain change. `blur`: probability of a Gaussian blur with sigma up to `blur_sigma`.
    """

    hflip: float = 0.5
    vflip: float = 0.0
    rotate: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.15
    contrast: float = 0.15
    blur: float = 0.2
    blur_sigma: float = 1.5

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Transform:
        """Draw one transform for an image of the given size."""
        flip_x = rng.random() < self.hflip
        flip_y = rng.random() < self.vflip
        angle = math.radians(rng.uniform(-self.rotate, self.rotate)) if self.rotate else 0.0
        zoom = rng.uniform(*self.scale)
        matrix = None
        if flip_x or flip_y or angle or zoom != 1.0:
            cx, cy = width / 2.0, height / 2.0
            sx = -zoom if flip_x else zoom
            sy = -zoom if flip_y else zoom
            cos, sin = math.cos(angle), math.sin(angle)
            # Rotate and scale about the image centre, in pixel-edge coordinates (x + 0.5 centres).
            linear = np.array([[cos * sx, -sin * sy], [sin * sx, cos * sy]])
            offset = np.array([cx, cy]) - linear @ np.array([cx, cy])
            # OpenCV maps pixel centres; shift by half a pixel on both sides of the map.
            half = np.array([0.5, 0.5])
            offset = offset + linear @ half - half
            matrix = np.hstack([linear, offset[:, None]]).astype(np.float64)
        gain = 1.0 + rng.uniform(-self.contrast, self.contrast)
        bias = rng.uniform(-self.brightness, self.brightness) * 255.0
        blur = rng.uniform(0.3, self.blur_sigma) if rng.random() < self.blur else 0.0
        return Transform(matrix, gain, bias, blur)


NO_AUGMENTATION = Augmentation(
    hflip=0.0, vflip=0.0, rotate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0, blur=0.0
)
