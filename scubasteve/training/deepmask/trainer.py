"""The DeepMask training loop: alternating mask and score batches, SGD as published, resumable.

Published recipe: SGD with momentum 0.9, weight decay 5e-4, batch 32, learning rate 1e-3 (lowered
later); mask batches (positives only) train trunk + mask head with a per-pixel logistic loss scaled
by 32 (the published code multiplies the mask gradient by the batch size), score batches (half
negatives) train trunk + score head with the plain logistic loss, i.e. the score loss weighs 1/32
of the mask loss.

A run folder holds ``state.pt`` (everything needed to resume, written atomically with a checksum
after every epoch), ``last.pt`` and ``best.pt`` (weights in our format) and ``log.jsonl``.
SharpMask training (`refine=True`) freezes the DeepMask and trains only the refinement on mask
batches at window resolution.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.checkpoint import save_weights
from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.inference.device import autocast
from scubasteve.training.deepmask.data import SampleSource
from scubasteve.training.deepmask.state import read_training_state, save_training_state
from scubasteve.training.progress import ProgressCallback, TrainProgress
from scubasteve.weights.checkpoint import cpu_state

log = logging.getLogger(__name__)

#: The published code scales the mask gradient by the batch size it used.
MASK_LOSS_SCALE = 32.0


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batches_per_epoch: int | None = None  # default: enough to see each object about twice
    lr_drops: tuple[float, ...] = (0.6, 0.85)  # fractions of the run where lr is divided by 10
    seed: int = 0
    val_objects: int = 200
    refine: bool = False  # train the SharpMask refinement on a frozen DeepMask
    score_every: int = 2  # every n-th batch is a score batch (published: alternate, n = 2)
    precise_bn: int = 4  # batches to re-estimate batch-norm statistics before validating
    optimizer: str = "sgd"  # "sgd" (published) or "adam" (quicker on small fine-tuning sets)
    bf16: bool | None = None  # bfloat16 autocast; None: where the device runs it fast

    def lr_at(self, epoch: int) -> float:
        drops = sum(1 for f in self.lr_drops if epoch >= f * self.epochs)
        return self.lr * 0.1**drops


def bf16_choice(value: str) -> bool | None:
    """`TrainOptions.bf16` from the command line's --bf16 auto | on | off."""
    return {"auto": None, "on": True, "off": False}[value]


@dataclass
class EpochResult:
    epoch: int
    mask_loss: float
    score_loss: float
    val_iou: float
    samples_per_s: float
    seconds: float
    lr: float


@dataclass
class TrainResult:
    config: DeepMaskConfig
    history: list[EpochResult] = field(default_factory=list)
    final: Path | None = None
    best: Path | None = None
    best_iou: float = 0.0


class Trainer:
    """Trains `net` (a DeepMask ModuleDict) on samples from `train`, validating on `val`.

    `progress` gets a `TrainProgress` when an epoch starts and after every batch, `on_epoch` an
    `EpochResult` after every finished epoch (both on the training thread). `fit(cancel=)` stops
    before the next batch with `Cancelled`; the run folder then holds the last finished epoch.
    """

    def __init__(
        self,
        net: Any,
        config: DeepMaskConfig,
        train: SampleSource,
        val: SampleSource | None,
        options: TrainOptions,
        run_dir: Path,
        device: str = "cpu",
        progress: ProgressCallback | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ):
        import torch

        self.net = net.to(device).to(memory_format=torch.channels_last)
        self.cfg = config
        self.train_src, self.val_src = train, val
        self.opts = options
        self.run_dir = Path(run_dir)
        self.device = device
        self.progress = progress
        self.on_epoch = on_epoch
        from scubasteve.inference.device import bf16_is_fast

        self.bf16 = bf16_is_fast(device) if options.bf16 is None else bool(options.bf16)
        self.rng = np.random.default_rng(options.seed)
        torch.manual_seed(options.seed)
        random.seed(options.seed)
        params = self._trainable()
        if options.optimizer == "adam":
            self.optimizer: Any = torch.optim.Adam(
                params, lr=options.lr, weight_decay=options.weight_decay
            )
        elif options.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                params, lr=options.lr, momentum=options.momentum, weight_decay=options.weight_decay
            )
        else:
            raise InputError(f"unknown optimiser {options.optimizer!r}; choose sgd or adam")
        self.epoch = 0
        self.history: list[EpochResult] = []
        self.best_iou = -1.0
        self._val_set = self._validation_set()

    def _trainable(self) -> list[Any]:
        if not self.opts.refine:
            return [p for p in self.net.parameters() if p.requires_grad]
        for name, module in self.net.items():
            for p in module.parameters():
                p.requires_grad_(name == "refine")
        return list(self.net["refine"].parameters())

    def _set_mode(self) -> None:
        if self.opts.refine:
            self.net.eval()  # frozen DeepMask: batch norms keep their statistics
            self.net["refine"].train()
        else:
            self.net.train()

    def _validation_set(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.val_src is None:
            return []
        rng = np.random.default_rng(1234)
        insts = list(self.val_src.instances)
        if len(insts) > self.opts.val_objects:
            insts = [
                insts[i]
                for i in sorted(rng.choice(len(insts), self.opts.val_objects, replace=False))
            ]
        return [self.val_src.positive(inst, None) for inst in insts]

    # --- steps -----------------------------------------------------------------------------------

    def _to_input(self, batch: np.ndarray) -> Any:
        import torch

        from scubasteve.inference.deepmask.network import normalise

        x = normalise(batch, device=self.device)
        return x.contiguous(memory_format=torch.channels_last)

    def _mask_loss(self, x: Any, labels: np.ndarray) -> Any:
        import torch
        import torch.nn.functional as F

        from scubasteve.inference.deepmask import network as N

        target = torch.as_tensor(labels, device=self.device, dtype=torch.float32)
        with autocast(self.device, self.bf16):
            if self.opts.refine:
                logits, _ = N.forward_sharpmask(self.net, self.cfg, x)
            else:
                logits, _ = N.forward_crops(self.net, self.cfg, x)
        logits = F.interpolate(
            logits.float()[:, None], size=target.shape[-2:], mode="bilinear", align_corners=False
        )[:, 0]
        return F.binary_cross_entropy_with_logits(logits, target) * MASK_LOSS_SCALE

    def _score_loss(self, x: Any, labels: np.ndarray) -> Any:
        import torch
        import torch.nn.functional as F

        from scubasteve.inference.deepmask import network as N

        with autocast(self.device, self.bf16):
            _, score = N.forward_crops(self.net, self.cfg, x)
        target = torch.as_tensor(labels, device=self.device)
        return F.binary_cross_entropy_with_logits(score.float(), target)

    def batches_per_epoch(self) -> int:
        if self.opts.batches_per_epoch:
            return int(self.opts.batches_per_epoch)
        return max(2, math.ceil(2 * len(self.train_src.instances) / self.opts.batch_size))

    def _draw(self, step: int) -> tuple[bool, np.ndarray, np.ndarray]:
        """(is a score batch, inputs, labels) of batch `step` of an epoch."""
        score_step = bool(
            not self.opts.refine and self.opts.score_every and step % self.opts.score_every == 1
        )
        if score_step:
            return True, *self.train_src.score_batch(self.rng, self.opts.batch_size)
        return False, *self.train_src.mask_batch(self.rng, self.opts.batch_size)

    def run_epoch(self, cancel: CancelToken | None = None) -> EpochResult:
        self._set_mode()
        lr = self.opts.lr_at(self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n = self.batches_per_epoch()
        self._report(n, 0, math.nan, math.nan)
        losses: dict[str, list[float]] = {"mask": [], "score": []}
        t0, samples = time.perf_counter(), 0
        # Samples are drawn on one worker thread, one batch ahead (OpenCV releases the GIL), in
        # the same order as without it, so runs stay reproducible and resumable.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepmask-samples")
        try:
            pending = pool.submit(self._draw, 0)
            for step in range(n):
                raise_if_cancelled(cancel)
                score_step, inputs, labels = pending.result()
                if step + 1 < n:
                    pending = pool.submit(self._draw, step + 1)
                if score_step:
                    loss = self._score_loss(self._to_input(inputs), labels)
                else:
                    loss = self._mask_loss(self._to_input(inputs), labels)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise InputError(
                        f"the training diverged (loss {value}) at epoch {self.epoch + 1}; "
                        "lower the learning rate with --lr"
                    )
                losses["score" if score_step else "mask"].append(value)
                samples += len(inputs)
                self._report(n, step + 1, _mean(losses["mask"][-20:]), _mean(losses["score"][-20:]))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        seconds = time.perf_counter() - t0
        if not self.opts.refine and self.opts.precise_bn:
            self.recalibrate_batch_norm(self.opts.precise_bn)
        val = self.validate()
        result = EpochResult(
            self.epoch + 1,
            _mean(losses["mask"]),
            _mean(losses["score"]),
            val,
            samples / max(seconds, 1e-9),
            seconds,
            lr,
        )
        self.epoch += 1
        self.history.append(result)
        return result

    def _report(self, steps: int, step: int, mask_loss: float, score_loss: float) -> None:
        if self.progress is not None:
            losses = {"mask": mask_loss, "score": score_loss}
            epoch = self.epoch + 1
            self.progress(TrainProgress(epoch, self.opts.epochs, step, steps, math.nan, losses))

    def recalibrate_batch_norm(self, batches: int) -> None:
        """Replace the running batch-norm statistics by exact averages over `batches` fresh
        training batches with the current weights. The running averages lag far behind on short
        runs, which makes evaluation-mode masks much worse than the training loss suggests."""
        import torch
        from torch import nn

        from scubasteve.inference.deepmask import network as N

        norms = [m for m in self.net.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        self.net.train()
        try:
            with torch.no_grad():
                for b in range(batches):
                    if b % 2 and self.opts.score_every:
                        inputs, _ = self.train_src.score_batch(self.rng, self.opts.batch_size)
                    else:
                        inputs, _ = self.train_src.mask_batch(self.rng, self.opts.batch_size)
                    with autocast(self.device, self.bf16):
                        N.forward_crops(self.net, self.cfg, self._to_input(inputs))
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum

    def validate(self, pairs: list[tuple[np.ndarray, np.ndarray]] | None = None) -> float:
        """Mean IoU of the predicted masks (probability > 0.5) on centred validation objects."""
        import torch
        import torch.nn.functional as F

        from scubasteve.inference.deepmask import network as N

        pairs = self._val_set if pairs is None else pairs
        if not pairs:
            return float("nan")
        was_training = self.net.training
        self.net.eval()
        ious = []
        with torch.inference_mode():
            for start in range(0, len(pairs), 32):
                chunk = pairs[start : start + 32]
                x = self._to_input(np.stack([p[0] for p in chunk]))
                with autocast(self.device, self.bf16):
                    if self.cfg.sharpmask and self.opts.refine:
                        logits, _ = N.forward_sharpmask(self.net, self.cfg, x)
                    else:
                        logits, _ = N.forward_crops(self.net, self.cfg, x)
                logits = logits.float()
                size = chunk[0][1].shape
                pred = (
                    F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[
                        :, 0
                    ]
                    > 0
                )
                pred = pred.cpu().numpy()
                for p, (_, label) in zip(pred, chunk, strict=True):
                    union = np.count_nonzero(p | label)
                    ious.append(np.count_nonzero(p & label) / union if union else 1.0)
        if was_training:
            self._set_mode()
        return float(np.mean(ious))

    # --- checkpoints -----------------------------------------------------------------------------

    def state_path(self) -> Path:
        return self.run_dir / "state.pt"

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this run: network, optimiser, epoch, history, generators."""
        import torch

        version, internal, gauss = random.getstate()
        return {
            "config": self.cfg.to_dict(),
            "options": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.opts).items()
            },
            "epoch": self.epoch,
            "best_iou": self.best_iou,
            "history": [asdict(h) for h in self.history],
            "state_dict": cpu_state(self.net.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "numpy": self.rng.bit_generator.state,
                "torch": torch.get_rng_state(),
                "python": list(internal),
                "python_version": version,
                "python_gauss": gauss,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()`; `InputError` when it is of another configuration."""
        import torch

        if DeepMaskConfig.from_dict(dict(state["config"])) != self.cfg:
            raise InputError("the run was started with another network configuration")
        self.net.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.best_iou = float(state.get("best_iou", -1.0))
        self.history = [EpochResult(**h) for h in state.get("history", [])]
        rng = state["rng"]
        self.rng.bit_generator.state = rng["numpy"]
        torch.set_rng_state(rng["torch"])
        random.setstate((rng["python_version"], tuple(rng["python"]), rng["python_gauss"]))

    def save_state(self) -> None:
        """Write everything needed to resume (atomically, with checksums) to `state_path()`."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_training_state(self.state_dict(), self.state_path())

    def load_state(self, path: Path | None = None) -> None:
        """Continue from a `state.pt`; damaged or foreign files raise `InputError`."""
        path = path or self.state_path()
        state = read_training_state(path)
        try:
            self.load_state_dict(state)
        except InputError as exc:
            raise InputError(exc.problem, path) from exc

    def save_weights(self, name: str, meta: dict[str, Any]) -> Path:
        return save_weights(self.run_dir / name, self.net.state_dict(), self.cfg, meta)

    def fit(
        self, meta: dict[str, Any] | None = None, cancel: CancelToken | None = None
    ) -> TrainResult:
        """Train until `options.epochs`, checkpointing after every epoch; returns the result.

        Raises `Cancelled` before the next batch once `cancel` is set (the checkpoints of the
        finished epochs stay, so the run can be resumed)."""
        meta = dict(meta or {})
        result = TrainResult(self.cfg, self.history)
        while self.epoch < self.opts.epochs:
            epoch = self.run_epoch(cancel)
            info = {**meta, "epochs": self.epoch, "val_iou": epoch.val_iou}
            if not math.isnan(epoch.val_iou) and epoch.val_iou > self.best_iou:
                self.best_iou = epoch.val_iou
                self.save_weights("best.pt", info)
            self.save_weights("last.pt", info)
            self.save_state()  # last: a resumed run never refers to weights not yet written
            _append_log(self.run_dir / "log.jsonl", asdict(epoch))
            if self.on_epoch is not None:
                self.on_epoch(epoch)
        result.history = self.history
        result.final = self.run_dir / "last.pt"
        best = self.run_dir / "best.pt"
        result.best = best if best.is_file() else result.final
        result.best_iou = max(self.best_iou, 0.0)
        return result


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
