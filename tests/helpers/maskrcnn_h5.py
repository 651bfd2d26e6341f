"""Shared helpers for the PixelLib tests: a random-weights Mask R-CNN built once per process, and
tiny metadata-only .h5 files for tests that never run the network."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

CLASSES = ("date", "fig", "hazelnut")


@functools.cache
def random_maskrcnn_h5() -> Path:
    """A ResNet-50 Mask R-CNN with random weights and a narrow classifier (fast to save and load)."""
    from scubasteve.inference.maskrcnn.model import MaskRCNNSpec, save_random_weights

    folder = Path(tempfile.mkdtemp(prefix="scubasteve-maskrcnn-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    spec = MaskRCNNSpec("resnet50", CLASSES, fc_layers_size=64)
    return save_random_weights(folder / "random_r50.h5", spec, image_dim=256)


def fake_h5(
    path: Path,
    backbone: str = "resnet50",
    num_classes: int = 4,
    class_names: list[str] | None = None,
    fc: int = 8,
) -> Path:
    """An .h5 with only the metadata `inspect_h5` reads: layer names and the classifier kernel."""
    import h5py

    stage4 = "res4w_branch2a" if backbone == "resnet101" else "res4f_branch2a"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"conv1", stage4.encode(), b"mrcnn_class_logits"])
        group = f.create_group("mrcnn_class_logits")
        group.attrs["weight_names"] = np.array(
            [b"mrcnn_class_logits/kernel:0", b"mrcnn_class_logits/bias:0"]
        )
        group.create_dataset("mrcnn_class_logits/kernel:0", data=np.zeros((fc, num_classes)))
        group.create_dataset("mrcnn_class_logits/bias:0", data=np.zeros((num_classes,)))
        if class_names is not None:
            f.attrs["scubasteve_class_names"] = json.dumps(class_names)
    return path
