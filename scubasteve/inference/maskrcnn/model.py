"""Mask R-CNN (PixelLib) weights files: what an .h5 holds, configs, and building models.

An .h5 file tells its own backbone (ResNet-50 has stage-4 blocks a..f, ResNet-101 a..w), its class
count (the width of `mrcnn_class_logits`) and its classifier width, so those are read from the file
instead of trusted from the caller. Models trained here also carry their class names as an HDF5
attribute, so a trained file is self-describing even outside the model registry.

Everything that touches TensorFlow must run on the TensorFlow thread (`tf_runtime`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.errors import InputError
from scubasteve.core.labels import COCO80

#: HDF5 attribute holding the class names (background excluded) of models trained here.
CLASS_NAMES_ATTR = "scubasteve_class_names"
BACKBONES = ("resnet50", "resnet101")


@dataclass(frozen=True)
class MaskRCNNSpec:
    """The shape of a Mask R-CNN: backbone, classes (background excluded), classifier width."""

    backbone: str
    class_names: tuple[str, ...]
    fc_layers_size: int = 1024

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise InputError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")
        if not self.class_names:
            raise InputError("a Mask R-CNN needs at least one class")
        if len(set(self.class_names)) != len(self.class_names):
            raise InputError(f"class names repeat: {list(self.class_names)}")

    @property
    def num_classes(self) -> int:
        """Classes including the background (PixelLib's NUM_CLASSES)."""
        return len(self.class_names) + 1


@dataclass(frozen=True)
class H5Info:
    """What an .h5 weights file says about itself. `class_names` is None when it carries none."""

    path: Path
    backbone: str
    num_classes: int  # including the background
    fc_layers_size: int
    class_names: tuple[str, ...] | None


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def inspect_h5(path: Path | str) -> H5Info:
    """Read backbone, class count and class names from a Mask R-CNN .h5 (no TensorFlow needed)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found", path)
    try:
        with h5py.File(path, "r") as f:
            group = (
                f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            )
            if "layer_names" not in group.attrs:
                raise InputError("not a Keras weights file (no layer list inside)", path)
            names = {_decode(n) for n in group.attrs["layer_names"]}
            if "mrcnn_class_logits" not in names:
                raise InputError("not Mask R-CNN weights (no mrcnn_class_logits layer)", path)
            logits = group["mrcnn_class_logits"]
            kernel_name = next(
                _decode(n) for n in logits.attrs["weight_names"] if "kernel" in _decode(n)
            )
            fc_size, num_classes = (int(v) for v in logits[kernel_name].shape)
            raw_names = f.attrs.get(CLASS_NAMES_ATTR)
    except OSError as exc:
        raise InputError(f"not a readable HDF5 weights file ({exc})", path) from exc
    except (KeyError, StopIteration, ValueError) as exc:
        raise InputError(f"Mask R-CNN weights file is damaged or incomplete ({exc})", path) from exc
    if "res4w_branch2a" in names:
        backbone = "resnet101"
    elif "res4f_branch2a" in names:
        backbone = "resnet50"
    else:
        raise InputError("Mask R-CNN weights without a ResNet-50 or ResNet-101 backbone", path)
    class_names = None
    if raw_names is not None:
        class_names = tuple(json.loads(_decode(raw_names)))
        if len(class_names) + 1 != num_classes:
            raise InputError(
                f"the file names {len(class_names)} classes but its classifier has "
                f"{num_classes - 1} (plus background)",
                path,
            )
    return H5Info(path, backbone, num_classes, fc_size, class_names)


def spec_for(
    info: H5Info,
    class_names: Sequence[str] | None = None,
    registered: Sequence[str] | None = None,
) -> MaskRCNNSpec:
    """The spec of an .h5. Class names come from the caller, else the file itself, else the model
    registry (`registered`), else COCO for an 81-class file."""
    names: tuple[str, ...] | None = tuple(class_names) if class_names else info.class_names
    if names is None and registered:
        names = tuple(registered)
    if names is None and info.num_classes == len(COCO80) + 1:
        names = COCO80
    if names is None:
        raise InputError(
            f"this model has {info.num_classes - 1} classes but does not name them; give its "
            "class names (a labels file, one per line, in training order)",
            info.path,
        )
    if len(names) + 1 != info.num_classes:
        raise InputError(
            f"wrong class count: the model has {info.num_classes - 1} classes (plus background) "
            f"but {len(names)} class names were given ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''})",
            info.path,
        )
    return MaskRCNNSpec(info.backbone, tuple(names), info.fc_layers_size)


def write_class_names(path: Path, class_names: tuple[str, ...] | list[str]) -> None:
    """Store the class names inside an .h5 written by Keras (before it is moved into place)."""
    import h5py

    with h5py.File(path, "a") as f:
        f.attrs[CLASS_NAMES_ATTR] = json.dumps(list(class_names))


def make_config(
    spec: MaskRCNNSpec,
    *,
    image_max_dim: int = 1024,
    image_min_dim: int | None = None,
    batch_size: int = 1,
    min_confidence: float = 0.0,
    **overrides: Any,
) -> Any:
    """A PixelLib `Config` with every field this program relies on set explicitly.

    PixelLib's own wrappers edit one module-global config; a fresh object per model avoids models
    changing each other's settings. `overrides` set further Config attributes (e.g. STEPS_PER_EPOCH).
    """
    from pixellib.instance.config import Config

    if image_max_dim % 64:
        raise InputError(f"image size must be a multiple of 64, got {image_max_dim}")
    cfg = Config(
        BACKBONE=spec.backbone,
        NUM_CLASSES=spec.num_classes,
        class_names=["BG", *spec.class_names],
        IMAGES_PER_GPU=batch_size,
        IMAGE_MAX_DIM=image_max_dim,
        IMAGE_MIN_DIM=image_min_dim or image_max_dim,
        DETECTION_MIN_CONFIDENCE=min_confidence,
        IMAGE_RESIZE_MODE="square",
        GPU_COUNT=1,
    )
    cfg.NAME = "scubasteve"
    cfg.FPN_CLASSIF_FC_LAYERS_SIZE = spec.fc_layers_size
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"unknown Mask R-CNN config field {key}")
        setattr(cfg, key, value)
    return cfg


def build_model(mode: str, config: Any, model_dir: Path | str | None = None) -> Any:
    """A PixelLib `MaskRCNN` ("inference" or "training") in the current graph. TF thread only."""
    from scubasteve.inference.maskrcnn.tf_runtime import import_tensorflow

    import_tensorflow()
    from pixellib.instance.mask_rcnn import MaskRCNN

    return MaskRCNN(mode=mode, config=config, model_dir=str(model_dir or os.getcwd()))


def load_weights(model: Any, path: Path, exclude: tuple[str, ...] = ()) -> None:
    """Load .h5 weights by layer name, as PixelLib's `MaskRCNN.load_weights(by_name=True)` does,
    without the private `tensorflow.python.keras.saving.hdf5_format` it imports (see
    `_read_keras_h5`); shape errors become a message about the file."""
    try:
        _read_keras_h5(model.keras_model, Path(path), exclude)
    except ValueError as exc:
        raise InputError(f"weights do not fit this Mask R-CNN: {exc}", path) from exc
    except (OSError, KeyError) as exc:
        raise InputError(f"cannot read the weights (damaged file?): {exc}", path) from exc
    model.set_log_dir(str(path))  # as PixelLib's load_weights does (it resets the epoch count)


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read_keras_h5(keras_model: Any, path: Path, exclude: tuple[str, ...] = ()) -> None:
    """Set the weights of the model's layers from the groups of the same name in a Keras HDF5 file.

    What Keras' `load_weights_from_hdf5_group_by_name` does for PixelLib and Matterport files: the
    file lists its layers in the attribute ``layer_names``, each layer group lists its datasets in
    ``weight_names``, in the order of the layer's trainable then non-trainable weights; layers of
    the model that the file lacks, or that are in `exclude`, keep their values. All values are set
    in one session run.
    """
    import h5py
    from tf_keras import backend

    layers = getattr(keras_model, "inner_model", keras_model).layers
    by_name: dict[str, list[Any]] = {}
    for layer in layers:
        if layer.name not in exclude:
            by_name.setdefault(layer.name, []).append(layer)
    pairs: list[tuple[Any, np.ndarray]] = []
    with h5py.File(path, "r") as f:
        root: Any = f
        if "layer_names" not in root.attrs and "model_weights" in root:
            root = root["model_weights"]
        if "layer_names" not in root.attrs:
            raise KeyError("no 'layer_names' attribute: not a Keras weights file")
        for raw in root.attrs["layer_names"]:
            name = _text(raw)
            if name not in by_name:
                continue
            group = root[name]
            values = [np.asarray(group[_text(w)]) for w in group.attrs.get("weight_names", [])]
            for layer in by_name[name]:
                weights = layer.trainable_weights + layer.non_trainable_weights
                if len(weights) != len(values):
                    raise ValueError(
                        f"layer {name!r} has {len(weights)} weights, the file {len(values)}"
                    )
                for weight, value in zip(weights, values, strict=True):
                    if tuple(weight.shape) != value.shape:
                        raise ValueError(
                            f"layer {name!r}: {weight.name} has shape {tuple(weight.shape)}, "
                            f"the file {value.shape}"
                        )
                    pairs.append((weight, value))
    backend.batch_set_value(pairs)


def save_weights(model: Any, path: Path, class_names: tuple[str, ...] | list[str]) -> None:
    """Save a model's weights as .h5 with its class names, atomically (tmp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.h5")
    try:
        _write_keras_h5(model.keras_model, tmp)
        write_class_names(tmp, class_names)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_keras_h5(keras_model: Any, path: Path) -> None:
    """Keras' HDF5 weights layout (what `save_weights` writes and `load_weights` reads by name).

    Keras reads the variables layer by layer, one session run each; in graph mode that made a
    checkpoint of a ResNet-50 Mask R-CNN take 10 to 15 s. Reading them all in one run is the same
    file in a fraction of the time.
    """
    import h5py
    import tf_keras
    from tf_keras import backend

    layers = list(keras_model.layers)
    # Keras' legacy h5 order: trainable weights first, then the others.
    weights = [layer.trainable_weights + layer.non_trainable_weights for layer in layers]
    values = iter(backend.batch_get_value([w for ws in weights for w in ws]))
    by_layer = {
        layer.name: (ws, [next(values) for _ in ws])
        for layer, ws in zip(layers, weights, strict=True)
    }
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = str(tf_keras.__version__).encode("utf8")
        for name in sorted(by_layer):  # sorted, as Keras does, so that no group name is a prefix
            group = f.create_group(name)
            ws, vals = by_layer[name]
            names = [w.name.encode("utf8") for w in ws]
            group.attrs["weight_names"] = names
            for weight_name, value in zip(names, vals, strict=True):
                group.create_dataset(weight_name, data=value)
        top = f.create_group("top_level_model_weights")
        top.attrs["weight_names"] = []


def save_random_weights(
    path: Path, spec: MaskRCNNSpec, image_dim: int = 256, seed: int = 0
) -> Path:
    """Build a randomly initialised Mask R-CNN of `spec` and save it (for tests and dry runs).

    The initialisation is seeded (the same file on every run), the classifier's background bias is
    pushed down so that the random network reports objects (a random classifier often calls
    everything background, which would leave nothing to test downstream), and its weights are scaled
    down so that scores and labels vary. Runs on the TensorFlow thread in a throw-away graph.
    """
    from scubasteve.inference.maskrcnn.tf_runtime import (
        GraphSession,
        import_tensorflow,
        tensorflow_thread,
    )

    def build() -> Any:
        import_tensorflow()
        import tf_keras

        # Python, numpy and the graph's seed: Keras draws initializer seeds from all of them.
        tf_keras.utils.set_random_seed(seed)
        model = build_model("inference", make_config(spec, image_max_dim=image_dim))
        logits = model.keras_model.get_layer("mrcnn_class_logits")
        kernel, bias = logits.get_weights()
        bias[0] = -10.0
        # Small logits: scores spread between the classes instead of saturating at 1.0.
        logits.set_weights([kernel * 0.02, bias])
        return model

    def work() -> Path:
        gs = GraphSession(use_gpu=False)
        try:
            gs.run(lambda: save_weights(build(), Path(path), spec.class_names))
        finally:
            gs.close()
        return Path(path)

    return tensorflow_thread().call(work)
