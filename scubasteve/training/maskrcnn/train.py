"""Training a PixelLib Mask R-CNN on the TensorFlow thread, with progress, checkpoints and a log.

PixelLib's `train_model` hard-wires its callbacks (a non-atomic ModelCheckpoint, a learning-rate step
every 50 epochs) and prints Keras' progress bar. This drives the same model (`MaskRCNN` in training
mode, PixelLib's `DataGenerator`, `set_trainable`, `compile`) with our own callbacks: progress for a
CLI or GUI, cancellation, `last.h5` after every epoch and `best.h5` by validation loss, both written
atomically with their class names inside, and `log.csv`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scubasteve.core.atomic import atomic_write_text
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import InputError
from scubasteve.inference.maskrcnn.model import (
    MaskRCNNSpec,
    build_model,
    inspect_h5,
    load_weights,
    make_config,
    save_weights,
)
from scubasteve.inference.maskrcnn.tf_runtime import (
    GraphSession,
    TensorFlowDevice,
    tensorflow_thread,
    visible_gpus,
)
from scubasteve.training.maskrcnn.augment import Augmentation
from scubasteve.training.progress import TrainProgress

#: Layers PixelLib re-initialises when the class list changes (as its own load_pretrained_model).
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")
LAYER_CHOICES = ("all", "heads", "3+", "4+", "5+")
LOSS_NAMES = (
    "rpn_class_loss",
    "rpn_bbox_loss",
    "mrcnn_class_loss",
    "mrcnn_bbox_loss",
    "mrcnn_mask_loss",
)


@dataclass(frozen=True)
class TrainSettings:
    """How to train. `init`: an .h5 path to start from (None: random weights). `steps`: steps per
    epoch (None: one pass over the training images). `image_size`: side images are resized and
    padded to (a multiple of 64). `layers`: which layers train (PixelLib's names)."""

    backbone: str = "resnet101"
    init: Path | None = None
    epochs: int = 10
    steps: int | None = None
    batch_size: int = 1
    image_size: int = 512
    layers: str = "all"
    learning_rate: float = 0.001
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    seed: int = 0
    device: str = "auto"
    #: Further PixelLib Config fields, e.g. fewer ROIs per image for quick runs on a CPU.
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InputError(f"--epochs must be at least 1, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.image_size < 64 or self.image_size % 64:
            raise InputError(f"--image-size must be a multiple of 64, got {self.image_size}")
        if self.layers not in LAYER_CHOICES:
            raise InputError(f"--layers must be one of {LAYER_CHOICES}, got {self.layers!r}")


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    loss: float
    val_loss: float | None
    seconds: float
    losses: dict[str, float]


@dataclass
class TrainResult:
    best: Path
    last: Path
    history: list[EpochLog]
    device: str


def _init_spec(
    settings: TrainSettings, class_names: list[str]
) -> tuple[MaskRCNNSpec, tuple[str, ...]]:
    """The spec to train and the layers to leave out when loading `settings.init`."""
    if settings.init is None:
        return MaskRCNNSpec(settings.backbone, tuple(class_names)), ()
    info = inspect_h5(settings.init)
    if info.backbone != settings.backbone:
        raise InputError(
            f"the initial weights are {info.backbone} but --backbone is {settings.backbone}; "
            "choose the matching backbone",
            settings.init,
        )
    spec = MaskRCNNSpec(settings.backbone, tuple(class_names), info.fc_layers_size)
    same_classes = info.class_names == tuple(class_names)
    return spec, () if same_classes else HEAD_LAYERS


def _write_log(path: Path, history: list[EpochLog]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["epoch", "loss", "val_loss", "seconds", *LOSS_NAMES])
    for h in history:
        val = "" if h.val_loss is None else f"{h.val_loss:.5f}"
        row = [h.epoch, f"{h.loss:.5f}", val, f"{h.seconds:.1f}"]
        writer.writerow(row + [f"{h.losses.get(n, float('nan')):.5f}" for n in LOSS_NAMES])
    atomic_write_text(path, buffer.getvalue())


def _copy_atomic(src: Path, dst: Path) -> None:
    """`dst` becomes a copy of `src`. A hard link suffices (and costs nothing) because `src` is only
    ever replaced by renaming a new file over it, never rewritten in place."""
    tmp = dst.with_name(f".{dst.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # file systems without hard links
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def train_maskrcnn(
    settings: TrainSettings,
    train_dataset: Any,
    test_dataset: Any,
    class_names: list[str],
    run_dir: Path,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train on PixelLib datasets (see `training.maskrcnn.data.coco_instances`); blocks until done.

    Writes `last.h5`, `best.h5` and `log.csv` into `run_dir`. `progress` is called from the
    TensorFlow thread. Setting `cancel` stops after the current step with `Cancelled` (the last
    finished epoch's checkpoints stay).
    """
    from scubasteve.training.maskrcnn import pixellib_compat

    pixellib_compat.apply()
    spec, exclude = _init_spec(settings, class_names)
    run_dir.mkdir(parents=True, exist_ok=True)
    return tensorflow_thread().call(
        _train_on_thread,
        settings,
        spec,
        exclude,
        train_dataset,
        test_dataset,
        run_dir,
        progress,
        cancel,
    )


def _train_on_thread(
    settings: TrainSettings,
    spec: MaskRCNNSpec,
    exclude: tuple[str, ...],
    train_dataset: Any,
    test_dataset: Any,
    run_dir: Path,
    progress: Callable[[TrainProgress], None] | None,
    cancel: CancelToken | None,
) -> TrainResult:
    steps = settings.steps or max(1, math.ceil(len(train_dataset.image_ids) / settings.batch_size))
    val_steps = max(1, math.ceil(len(test_dataset.image_ids) / settings.batch_size))
    config = make_config(
        spec,
        image_max_dim=settings.image_size,
        batch_size=settings.batch_size,
        STEPS_PER_EPOCH=steps,
        VALIDATION_STEPS=val_steps,
        LEARNING_RATE=settings.learning_rate,
        **settings.config_overrides,
    )
    use_gpu = settings.device != "cpu" and bool(visible_gpus())
    try:
        session, model = _build(use_gpu, config, settings, exclude, run_dir)
        device = TensorFlowDevice("gpu" if use_gpu else "cpu", "", "" if use_gpu else "no GPU")
    except InputError:
        raise
    except Exception as exc:
        if not use_gpu:
            raise
        session, model = _build(False, config, settings, exclude, run_dir)
        device = TensorFlowDevice("cpu", "", f"the GPU failed ({type(exc).__name__}: {exc})")
    try:
        return session.run(
            _fit,
            model,
            settings,
            spec,
            train_dataset,
            test_dataset,
            run_dir,
            progress,
            cancel,
            device,
        )
    finally:
        session.close()


def _build(
    use_gpu: bool, config: Any, settings: TrainSettings, exclude: tuple[str, ...], run_dir: Path
) -> tuple[GraphSession, Any]:
    session = GraphSession(use_gpu=use_gpu)
    try:

        def build() -> Any:
            import tf_keras

            # Python, numpy and the graph's seed: Keras draws initializer seeds from all of them.
            tf_keras.utils.set_random_seed(settings.seed)
            model = build_model("training", config, run_dir)
            if settings.init is not None:
                load_weights(model, settings.init, exclude)
            return model

        return session, session.run(build)
    except BaseException:
        session.close()
        raise


def _compile(model: Any, learning_rate: float) -> None:
    """PixelLib's `compile` with an optimizer that works in graph mode.

    PixelLib builds `keras.optimizers.SGD`, which in Keras 2.11+ is the eager-only optimizer (no
    `get_updates`), so its training fails in graph mode; the legacy SGD is the one graph mode uses.
    Losses, weight decay (skipping batch-norm gamma/beta) and loss metrics are as in PixelLib.
    """
    import tensorflow as tf
    import tf_keras

    config, keras_model = model.config, model.keras_model
    optimizer = tf_keras.optimizers.legacy.SGD(
        learning_rate=learning_rate,
        momentum=config.LEARNING_MOMENTUM,
        clipnorm=config.GRADIENT_CLIP_NORM,
    )
    for name in LOSS_NAMES:
        layer = keras_model.get_layer(name)
        loss = tf.reduce_mean(layer.output, keepdims=True) * config.LOSS_WEIGHTS.get(name, 1.0)
        keras_model.add_loss(loss)
    decay = [
        tf_keras.regularizers.l2(config.WEIGHT_DECAY)(w) / tf.cast(tf.size(w), tf.float32)
        for w in keras_model.trainable_weights
        if "gamma" not in w.name and "beta" not in w.name
    ]
    # As a callable: a tensor that does not depend on the inputs makes Keras trace it into layers,
    # which took seconds per compile.
    keras_model.add_loss(lambda: tf.add_n(decay))
    keras_model.compile(optimizer=optimizer, loss=[None] * len(keras_model.outputs))
    for name in LOSS_NAMES:
        layer = keras_model.get_layer(name)
        loss = tf.reduce_mean(layer.output, keepdims=True) * config.LOSS_WEIGHTS.get(name, 1.0)
        keras_model.add_metric(loss, name=name, aggregation="mean")


def _fit(
    model: Any,
    settings: TrainSettings,
    spec: MaskRCNNSpec,
    train_dataset: Any,
    test_dataset: Any,
    run_dir: Path,
    progress: Callable[[TrainProgress], None] | None,
    cancel: CancelToken | None,
    device: TensorFlowDevice,
) -> TrainResult:
    import numpy as np
    import tf_keras
    from pixellib.instance.mask_rcnn import DataGenerator

    np.random.seed(settings.seed)  # PixelLib's generator shuffles with numpy's global state
    layer_regex = {
        "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
        "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
        "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
        "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
        "all": ".*",
    }[settings.layers]
    model.set_trainable(layer_regex, verbose=0)
    _compile(model, settings.learning_rate)
    config = model.config
    steps = config.STEPS_PER_EPOCH
    train_gen = DataGenerator(train_dataset, config, shuffle=True, augmentation=None)
    val_gen = DataGenerator(test_dataset, config, shuffle=False)
    # PixelLib's augmentation argument needs imgaug; ours lives in the dataset (see augment.py).
    train_dataset.augmentation = settings.augmentation
    last, best = run_dir / "last.h5", run_dir / "best.h5"
    history: list[EpochLog] = []
    state = {"best": math.inf, "epoch": 0, "started": time.perf_counter(), "cancelled": False}

    class Hooks(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            state["epoch"], state["started"] = epoch + 1, time.perf_counter()
            if progress is not None:  # step 0: the epoch starts (no loss yet)
                progress(TrainProgress(epoch + 1, settings.epochs, 0, steps, math.nan, {}))

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            if progress is not None:
                losses = {n: float(logs[n]) for n in LOSS_NAMES if n in logs}
                progress(
                    TrainProgress(
                        state["epoch"],
                        settings.epochs,
                        batch + 1,
                        config.STEPS_PER_EPOCH,
                        float(logs.get("loss", math.nan)),
                        losses,
                    )
                )
            if cancel is not None and cancel.cancelled:
                state["cancelled"] = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            val = logs.get("val_loss")
            entry = EpochLog(
                epoch + 1,
                float(logs.get("loss", math.nan)),
                None if val is None else float(val),
                time.perf_counter() - state["started"],
                {n: float(logs[n]) for n in LOSS_NAMES if n in logs},
            )
            if state["cancelled"]:
                return  # a partial epoch is neither logged nor saved
            history.append(entry)
            save_weights(model, last, spec.class_names)
            metric = (
                entry.val_loss
                if entry.val_loss is not None and math.isfinite(entry.val_loss)
                else entry.loss
            )
            if metric < state["best"] or not best.exists():
                state["best"] = metric
                _copy_atomic(last, best)
            _write_log(run_dir / "log.csv", history)

    model.keras_model.fit(
        train_gen,
        initial_epoch=0,
        epochs=settings.epochs,
        steps_per_epoch=config.STEPS_PER_EPOCH,
        callbacks=[Hooks()],
        validation_data=val_gen,
        validation_steps=config.VALIDATION_STEPS,
        max_queue_size=10,
        workers=1,
        use_multiprocessing=False,
        verbose=0,
    )
    if state["cancelled"]:
        raise Cancelled
    return TrainResult(best, last, history, device.describe())
