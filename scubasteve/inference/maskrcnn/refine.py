"""Refining PixelLib's instance masks with a mask-proposal engine, keeping both masks.

Mask R-CNN predicts each mask at 28x28 inside its box, so outlines are coarse on large objects. Each
instance box (slightly grown) goes to a `MaskProposer`; the proposal that overlaps PixelLib's mask most
becomes the instance's `refined` mask (choosing by agreement keeps the refiner on the same object
instead of a part or a neighbour). The instance keeps PixelLib's mask too, so the user can take either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.inference.base import MaskProposer, Proposal, patch_iou, validate_box
from scubasteve.inference.maskrcnn.instances import Instance

#: How the refined mask is picked among the proposals: "agree" (most overlap with PixelLib's mask)
#: or "top" (the proposer's own best).
CHOICES = ("agree", "top")
#: Boxes grow by this fraction per side so that the proposer sees the object's whole outline.
DEFAULT_GROW = 0.05
#: Below this IoU with PixelLib's mask the refined mask is probably another object: `preferred`
#: then stays with PixelLib's mask.
DEFAULT_MIN_AGREEMENT = 0.5


def pick_refined(
    instance: Instance, proposals: Sequence[Proposal], choice: str = "agree"
) -> Proposal | None:
    """The proposal that refines `instance`, or None when there are none."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    usable = [p for p in proposals if p.area > 0]
    if not usable:
        return None
    if choice == "top":
        return usable[0]
    return max(usable, key=lambda p: (patch_iou(p.patch, instance.patch), p.score))


def refine_instances(
    image: np.ndarray,
    instances: Sequence[Instance],
    proposer: MaskProposer,
    *,
    k: int = 10,
    grow: float = DEFAULT_GROW,
    choice: str = "agree",
    cancel: CancelToken | None = None,
) -> list[Instance]:
    """`instances` with `refined` (and `refined_iou`) filled in from `proposer`.

    `image`: the (H, W, 3) uint8 RGB image the instances were found in. Runs on the caller's thread
    (the proposer is not a TensorFlow engine). Raises `Cancelled` when `cancel` is set.
    """
    if not instances:
        return []
    height, width = image.shape[:2]
    proposer.set_image(image)
    refined: list[Instance] = []
    for inst in instances:
        raise_if_cancelled(cancel)
        try:
            box = validate_box(inst.box.grow(grow), width, height)
        except ValueError:
            refined.append(inst)
            continue
        best = pick_refined(inst, proposer.propose(box, k=k, cancel=cancel), choice)
        if best is None:
            refined.append(inst)
            continue
        refined.append(replace(inst, refined=best, refined_iou=patch_iou(best.patch, inst.patch)))
    return refined


def preferred(instance: Instance, min_agreement: float = DEFAULT_MIN_AGREEMENT) -> str:
    """ "refined" when the instance has a refined mask agreeing enough with PixelLib's, else "pixellib"."""
    if instance.refined is None or instance.refined_iou is None:
        return "pixellib"
    return "refined" if instance.refined_iou >= min_agreement else "pixellib"
