"""SAM 2 prompts for one box: the variants that give ten candidates, the decoder call, the masks.

A `Prompt` is one batch of decoder inputs (boxes, points, previous logits, single- or multi-mask
output). `decode` runs upstream's prompt encoder and mask decoder on a cached image embedding, as
`SAM2ImagePredictor._predict` does, but returns the 256 x 256 low-resolution logits instead of
upsampling every mask to the whole image: `region_mask` then resamples only the part of the image
around the box (bilinear, the same sampling as upstream's `postprocess_masks`), so that a
12,000 x 9,000 photo costs no more than a small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint


@dataclass(frozen=True)
class Prompt:
    """A batch of B prompts of one kind. `boxes`: (B, 4) XYXY image pixels; `points`: (B, N, 2)
    and `labels`: (B, N) (1 positive, 0 negative) or None; `mask_input`: (1, 256, 256) logits
    given to every prompt of the batch, or None. `tag` names the variant in `Proposal.source`."""

    tag: str
    boxes: np.ndarray
    multimask: bool
    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    mask_input: np.ndarray | None = None


def _points(points: Sequence[PromptPoint], batch: int) -> tuple[np.ndarray, np.ndarray] | None:
    if not points:
        return None
    xy = np.array([[p.x, p.y] for p in points], dtype=np.float32)
    lab = np.array([1 if p.positive else 0 for p in points], dtype=np.int32)
    return np.repeat(xy[None], batch, axis=0), np.repeat(lab[None], batch, axis=0)


def _prompt(
    tag: str,
    boxes: Sequence[Box],
    multimask: bool,
    points: Sequence[PromptPoint] = (),
    mask_input: np.ndarray | None = None,
) -> Prompt:
    arr = np.array([[b.x0, b.y0, b.x1, b.y1] for b in boxes], dtype=np.float32)
    xy, labels = _points(points, len(boxes)) or (None, None)
    return Prompt(tag, arr, multimask, xy, labels, mask_input)


def first_prompt(box: Box, points: Sequence[PromptPoint], previous: np.ndarray | None) -> Prompt:
    """The prompt whose answer is shown first.

    A box alone: SAM's three ambiguity-aware masks. With clicks: SAM's interactive step, box and
    clicks with the previous low-resolution logits as `mask_input` and a single mask out.
    """
    if not points:
        return _prompt("box", [box], True)
    return _prompt("clicks", [box], False, points, previous)


def more_prompts(
    box: Box,
    points: Sequence[PromptPoint],
    previous: np.ndarray | None,
    jitter: float,
    width: int,
    height: int,
) -> list[Prompt]:
    """The other variants: single-mask output, the box with its centre point, the box shrunk and
    grown by `jitter` of its size per side (clicks, when given, go with every variant)."""
    shrunk = box.grow(-jitter)
    grown = box.grow(jitter).clip(width, height)
    sized = [b for b in (shrunk, grown) if b.width >= 1 and b.height >= 1]
    if not points:
        cx, cy = box.center
        return [
            _prompt("box-single", [box], False),
            _prompt("box+centre", [box], True, [PromptPoint(cx, cy, True)]),
            _prompt("box-resized", sized, True),
        ]
    out = [_prompt("clicks-multi", [box], True, points, previous)]
    if previous is not None:
        out.append(_prompt("clicks-fresh", [box], False, points))
    out.append(_prompt("clicks-resized", sized, True, points, previous))
    return out


def decode(
    model: Any, transforms: Any, features: dict[str, Any], hw: tuple[int, int], prompt: Prompt
) -> tuple[np.ndarray, np.ndarray]:
    """(logits (B, C, 256, 256) float32, predicted IoU (B, C)) for `prompt` on one embedding.

    Mirrors `SAM2ImagePredictor._predict` (boxes become two labelled corner points in front of
    the clicks) without its upsampling to the image size. Call inside `torch.inference_mode()`.
    """
    import torch

    device = features["image_embed"].device
    batch = len(prompt.boxes)
    boxes = torch.as_tensor(prompt.boxes, dtype=torch.float, device=device)
    coords = transforms.transform_boxes(boxes, normalize=True, orig_hw=hw).reshape(-1, 2, 2)
    labels = torch.tensor([[2, 3]], dtype=torch.int, device=device).repeat(batch, 1)
    if prompt.points is not None and prompt.labels is not None:
        pts = torch.as_tensor(prompt.points, dtype=torch.float, device=device)
        pts = transforms.transform_coords(pts, normalize=True, orig_hw=hw)
        coords = torch.cat([coords, pts], dim=1)
        point_labels = torch.as_tensor(prompt.labels, dtype=torch.int, device=device)
        labels = torch.cat([labels, point_labels], dim=1)
    masks = None
    if prompt.mask_input is not None:
        masks = torch.as_tensor(prompt.mask_input, dtype=torch.float, device=device)
        masks = masks.reshape(1, 1, *masks.shape[-2:]).repeat(batch, 1, 1, 1)
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=masks)
    low_res, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=features["image_embed"],
        image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=prompt.multimask,
        repeat_image=batch > 1,
        high_res_features=features["high_res_feats"],
    )
    low_res = torch.clamp(low_res, -32.0, 32.0)
    return low_res.float().cpu().numpy(), iou.float().cpu().numpy()


def region_for(
    box: Box, points: Sequence[PromptPoint], margin: float, width: int, height: int
) -> Box:
    """The integer image region masks are cut to: the box grown by `margin` of its size, and
    every click (SAM's masks may reach a little past the box; far-away blobs are dropped)."""
    grown = box.grow(margin)
    xs = [grown.x0, grown.x1, *(p.x for p in points)]
    ys = [grown.y0, grown.y1, *(p.y for p in points)]
    x0, y0 = max(0, int(np.floor(min(xs)))), max(0, int(np.floor(min(ys))))
    x1, y1 = min(width, int(np.ceil(max(xs)))), min(height, int(np.ceil(max(ys))))
    return Box(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def region_logits(logits: np.ndarray, hw: tuple[int, int], region: Box) -> np.ndarray:
    """Low-resolution logits (h, w) resampled to the image pixels of `region`.

    Equals upsampling to the whole image (bilinear, align_corners=False, as upstream) and then
    cropping: source coordinate = (x + 0.5) * w / W - 0.5 for image column x.
    """
    height, width = hw
    lh, lw = logits.shape
    sx, sy = lw / width, lh / height
    x0, y0 = int(region.x0), int(region.y0)
    matrix = np.array(
        [[sx, 0.0, (x0 + 0.5) * sx - 0.5], [0.0, sy, (y0 + 0.5) * sy - 0.5]], dtype=np.float64
    )
    size = (int(region.width), int(region.height))
    return cv2.warpAffine(
        np.ascontiguousarray(logits, dtype=np.float32),
        matrix,
        size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def mask_logits(
    patch: MaskPatch, hw: tuple[int, int], size: int = 256, value: float = 8.0
) -> np.ndarray:
    """A mask given as a patch, as (1, size, size) low-resolution logits (+value inside,
    -value outside) for `mask_input`, sampled at the low-resolution cells' centres."""
    height, width = hw
    sx, sy = width / size, height / size
    matrix = np.array(
        [[sx, 0.0, 0.5 * sx - 0.5 - patch.x], [0.0, sy, 0.5 * sy - 0.5 - patch.y]], dtype=np.float64
    )
    inside = cv2.warpAffine(
        patch.mask.astype(np.float32),
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return np.where(inside > 0.5, value, -value).astype(np.float32)[None]
