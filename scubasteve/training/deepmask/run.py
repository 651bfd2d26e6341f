"""Set up and run a DeepMask or SharpMask training: data, starting weights, run folder, registration.

The training commands (`jobs.py`), the benchmark and learning from a project use this; it is
Qt-free so that the app can call it from a worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scubasteve.core.annotation import ImageDoc, accepted
from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.core.paths import data_dir
from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.training.deepmask.data import (
    DatasetSummary,
    Instance,
    SampleSource,
    check_dataset,
    collect_instances,
    split_by_image,
)
from scubasteve.training.deepmask.trainer import EpochResult, TrainOptions, TrainResult
from scubasteve.training.progress import ProgressCallback

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Documents plus where they came from (for messages and metadata)."""

    docs: list[ImageDoc]
    where: str


def load_dataset(
    coco: Path | None = None, images: Path | None = None, labelme: Path | None = None
) -> Dataset:
    """Documents of a COCO file (with its image folder) or of a LabelMe folder."""
    if coco is not None:
        from scubasteve.io.coco import read_coco

        problems: list[Any] = []
        data = read_coco(coco, images, problems)
        for p in problems[:5]:
            log.warning("%s", p)
        return Dataset(list(data.docs), str(coco))
    if labelme is not None:
        from scubasteve.io.dataset import read_labelme_folder

        docs, report = read_labelme_folder(Path(labelme))
        for p in report.problems[:5]:
            log.warning("%s", p)
        # Pre-annotations nobody has accepted yet are not training data.
        docs = [accepted(d) for d in docs]
        return Dataset([d for d in docs if d.annotations], str(labelme))
    raise InputError("give a COCO file (--coco, with --images) or a LabelMe folder (--labelme)")


def default_run_dir(name: str) -> Path:
    return data_dir() / "runs" / name


def starting_network(
    init: str | Path | None, sharpmask: bool = False, arch: str = "resnet50"
) -> tuple[Any, DeepMaskConfig, str]:
    """(network, config, description) to start training from: random, a ResNet trunk, or weights.

    `arch` chooses the random network: "resnet50" (the published one) or "tiny" (quick checks).
    """
    from scubasteve.inference.deepmask.config import tiny_config
    from scubasteve.inference.deepmask.network import build_network
    from scubasteve.inference.deepmask.weights import load_weights_file
    from scubasteve.weights import resolve_weights

    if init is None:
        if arch == "tiny":
            cfg = tiny_config(sharpmask=sharpmask)
            return build_network(cfg), cfg, "random weights (tiny network)"
        cfg = DeepMaskConfig(sharpmask=sharpmask)
        return build_network(cfg), cfg, "random weights"
    path = resolve_weights(init)  # any model it can start from: DeepMask, SharpMask, a trunk
    loaded = load_weights_file(path)
    if loaded.meta.get("trunk_only"):
        cfg = DeepMaskConfig(
            padding=loaded.config.padding,
            trunk_width=loaded.config.trunk_width,
            trunk_blocks=loaded.config.trunk_blocks,
            sharpmask=sharpmask,
        )
        net = build_network(cfg)
        net.load_state_dict(loaded.state_dict, strict=False)
        return net, cfg, f"the ResNet trunk of {path.name}"
    cfg = loaded.config.with_sharpmask(sharpmask)
    net = build_network(cfg)
    state = {k: v for k, v in loaded.state_dict.items() if sharpmask or not k.startswith("refine.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("refine.") and "num_batches" not in k for k in missing):
        raise InputError("these weights do not fit the network to train", path)
    return net, cfg, f"{path.name}"


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    state = run_dir / "state.pt"
    if resume and not state.is_file():
        raise InputError("nothing to resume: no state.pt in the run folder", run_dir)
    if not resume and state.is_file():
        raise InputError(
            "a training run already exists here; continue it with --resume, or choose another "
            "--name or --out",
            run_dir,
        )
    run_dir.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Split:
    """A dataset's usable objects, split by image into training and validation (or held-out)
    images; `train_ids` and `val_ids` index `docs`."""

    docs: list[ImageDoc]
    instances: list[Instance]
    train_ids: list[int]
    val_ids: list[int]
    summary: DatasetSummary
    where: str

    @property
    def val_docs(self) -> list[ImageDoc]:
        return [self.docs[i] for i in self.val_ids]

    def describe(self) -> str:
        return (
            f"{self.summary.describe()}; split {len(self.train_ids)} train / "
            f"{len(self.val_ids)} validation images"
        )


def split_dataset(data: Dataset, val_fraction: float, seed: int = 0) -> Split:
    """The usable objects of `data` split by image (`split_by_image`); `InputError` for a dataset
    that cannot train anything."""
    instances, summary = collect_instances(data.docs)
    check_dataset(instances, summary, data.where, need_images=2)
    train_ids, val_ids = split_by_image(len(data.docs), val_fraction, seed)
    return Split(list(data.docs), instances, train_ids, val_ids, summary, data.where)


def train(
    split: Split,
    net: Any,
    config: DeepMaskConfig,
    options: TrainOptions,
    run_dir: Path,
    device: str,
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    meta: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train `net` on the split's training objects, validating on its validation objects (none:
    no validation); checkpoints in `run_dir`.

    `progress`, `on_epoch` and `cancel` as in `Trainer`. Inside a process group (`--workers N`,
    `--ray`) the group's trainer runs (`group.trainer_class`)."""
    from scubasteve.training.deepmask.group import trainer_class

    label_size = config.window if options.refine else None
    train_src, val_src = sources_for(
        split.docs, split.train_ids, split.val_ids, split.instances, config, label_size
    )
    trainer = trainer_class()(
        net, config, train_src, val_src, options, run_dir, device, progress, on_epoch
    )
    if resume:
        trainer.load_state()
        log.info("resuming after epoch %d", trainer.epoch)
    info = {
        "trained": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "train_images": len(split.train_ids),
        "train_objects": len(train_src.instances),
        "val_objects": len(val_src.instances) if val_src else 0,
        "lr": options.lr,
        "batch_size": options.batch_size,
        "device": device,
        **(meta or {}),
    }
    return trainer.fit(info, cancel)


def register_result(name: str, result: TrainResult, meta: dict[str, Any]) -> Path:
    """Install the best weights of a run under `name` (so the engine loads them by name)."""
    from scubasteve.inference.deepmask.weights import register

    if result.best is None or not result.best.is_file():
        raise InputError(f"the run produced no weights to register as {name!r}")
    kind = "sharpmask" if result.config.sharpmask else "deepmask"
    history = [
        {"epoch": h.epoch, "val_iou": h.val_iou, "mask_loss": h.mask_loss} for h in result.history
    ]
    return register(
        name, kind, result.best, {**meta, "best_val_iou": result.best_iou, "history": history}
    )


def sources_for(
    docs: list[ImageDoc],
    train_ids: list[int],
    val_ids: list[int],
    instances: list[Instance],
    cfg: DeepMaskConfig,
    label_size: int | None = None,
) -> tuple[SampleSource, SampleSource | None]:
    train = [i for i in instances if i.doc in set(train_ids)]
    val = [i for i in instances if i.doc in set(val_ids)]
    if not train:
        raise InputError("no usable training objects in the training images")
    t = SampleSource(docs, train, cfg, label_size=label_size)
    v = SampleSource(docs, val, cfg, label_size=label_size) if val else None
    return t, v
