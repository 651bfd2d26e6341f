"""Finding Mask R-CNN weights by name or path, and registering trained ones.

The model registry (`scubasteve.inference.weights`) owns names such as `mask_rcnn_coco`. Until it is
present this module falls back to plain files: an existing .h5 path, or `<models_dir>/maskrcnn/NAME.h5`
for models trained here.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.core.paths import models_dir

log = logging.getLogger(__name__)

COCO_MODEL = "mask_rcnn_coco"
COCO_URL = "https://github.com/ayoolaolafenwa/PixelLib/releases/download/1.2/mask_rcnn_coco.h5"
KIND = "maskrcnn"


def fallback_dir() -> Path:
    return models_dir() / KIND


def _how_to_get(name: str) -> str:
    if name == COCO_MODEL:
        return (
            f"download mask_rcnn_coco.h5 (about 250 MB) from {COCO_URL} and run "
            f"`scubasteve models import {COCO_MODEL} mask_rcnn_coco.h5`, or pass the .h5 path"
        )
    return "train it with `scubasteve train maskrcnn --name NAME`, or pass an .h5 path"


def resolve_model_file(name_or_path: str | Path) -> Path:
    """The .h5 file of a model name or path; InputError saying how to get it when it is missing."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix.lower() in (".h5", ".hdf5") or candidate.is_file():
        if not candidate.is_file():
            raise InputError("weights file not found", candidate)
        return candidate
    try:
        from scubasteve.inference import weights as registry
    except ImportError:
        registry = None  # type: ignore[assignment]
    if registry is not None:
        try:
            return Path(registry.resolve_weights(text, kind=KIND))
        except registry.WeightsNotInstalled as exc:
            local = fallback_dir() / f"{text}.h5"
            if local.is_file():
                return local
            raise InputError(
                f"model {text!r} is not installed ({exc}); {_how_to_get(text)}"
            ) from exc
        except (KeyError, ValueError) as exc:
            local = fallback_dir() / f"{text}.h5"
            if local.is_file():
                return local
            raise InputError(f"unknown model {text!r} ({exc}); {_how_to_get(text)}") from exc
    local = fallback_dir() / f"{text}.h5"
    if local.is_file():
        return local
    raise InputError(f"model {text!r} is not installed; {_how_to_get(text)}")


def register_model(name: str, path: Path, meta: dict[str, Any]) -> Path:
    """Make a trained .h5 available by `name`; returns the installed file.

    `meta` must hold "class_names". Uses the registry's `register_trained` when it exists, otherwise
    copies the file to `<models_dir>/maskrcnn/NAME.h5` (which `resolve_model_file` finds).
    """
    if not meta.get("class_names"):
        raise ValueError("meta['class_names'] is required")
    try:
        from scubasteve.inference import weights as registry
    except ImportError:
        registry = None  # type: ignore[assignment]
    if registry is not None and hasattr(registry, "register_trained"):
        result = registry.register_trained(name, KIND, Path(path), meta)
        return Path(result) if isinstance(result, (str, Path)) else Path(path)
    target = fallback_dir() / f"{name}.h5"
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(path).resolve() != target.resolve():
        tmp = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    log.info("registered Mask R-CNN %r at %s", name, target)
    return target
