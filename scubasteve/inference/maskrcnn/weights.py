"""Mask R-CNN models by name: the weights registry (`scubasteve.weights`) for PixelLib.

`mask_rcnn_coco` is a published model; models trained here are registered with their class names
("BG" first, the registry's convention for Mask R-CNN) and also carry them inside the .h5.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COCO_MODEL = "mask_rcnn_coco"
KIND = "maskrcnn"


def registered_class_names(name_or_path: str | Path) -> tuple[str, ...] | None:
    """Class names (background excluded) the registry holds for a model name, or None."""
    if isinstance(name_or_path, Path):
        return None
    from scubasteve.weights import model_status

    status = model_status(str(name_or_path))
    if status is None or not status.info.class_names:
        return None
    names = tuple(status.info.class_names)
    return names[1:] if names and names[0] == "BG" else names


def register_model(name: str, path: Path, meta: dict[str, Any]) -> Path:
    """Install a trained .h5 under `name` (copied into the models folder); returns its new path.

    `meta["class_names"]` lists the classes without the background; the registry stores them with
    "BG" first.
    """
    from scubasteve.weights import register_trained

    names = list(meta.get("class_names") or [])
    if not names:
        raise ValueError("meta['class_names'] is required")
    if names[0] != "BG":
        names = ["BG", *names]
    installed = register_trained(name, KIND, Path(path), {**meta, "class_names": names})
    log.info("registered Mask R-CNN %r at %s", name, installed)
    return Path(installed)
