"""Fine-tuning IS-Net on box crops: the loop, its loss, checkpoints and resuming.

Loss, as in the DIS paper: binary cross-entropy on every side output (the six maps the network
predicts at different depths, each resized to the input), plus a soft-IoU term on the finest one,
which weighs thin structures by their share of the object rather than of the crop. Adam, bf16
autocast where the device runs it fast. After every epoch the network and the optimiser are saved
atomically to `state.pt` in the run folder (with the epoch, the random state and the loss
history), so a killed run resumes where it stopped (`resume=True`); a cancelled one stops after
the current step and can resume too. torch is imported inside the functions.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.training.isnet.data import BoxCrops, BoxObject
from scubasteve.training.progress import ProgressCallback, TrainProgress

STATE_FORMAT = "scubasteve-isnet-training"
STATE_VERSION = 1
#: Weight of each side output's cross-entropy (side 1, the finest, first).
SIDE_WEIGHTS = (1.0, 0.6, 0.4, 0.3, 0.2, 0.2)


@dataclass(frozen=True)
class IsnetTrainOptions:
    """`input_size`: the crops' side in pixels (docs/isnet-training.md has time and quality per
    size); `context`: the engine's crop context; `grow`: random box growth per side; `blend`: the
    share of the fine-tuned weights in the result, the rest being the starting weights (weight-space
    ensembling, WiSE-FT: keeps what the start knew about objects unlike the training crops)."""

    input_size: int = 384
    epochs: int = 6
    batch_size: int = 4
    lr: float = 5e-5
    iou_weight: float = 1.0
    context: float = 0.1
    grow: tuple[float, float] = (0.0, 0.10)
    bf16: bool | None = None
    seed: int = 0
    blend: float = 0.5


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    samples: int
    seconds: float


@dataclass
class TrainRecord:
    """What a finished (or stopped) run did."""

    epochs_done: int
    history: list[EpochRecord] = field(default_factory=list)
    cancelled: bool = False

    @property
    def samples_per_second(self) -> float:
        samples = sum(e.samples for e in self.history)
        seconds = sum(e.seconds for e in self.history)
        return samples / seconds if seconds > 0 else 0.0


def side_loss(logits: Sequence[Any], target: Any, iou_weight: float) -> Any:
    """The training loss of one batch (see the module docstring); `target` is (B, 1, S, S)."""
    import torch
    import torch.nn.functional as F

    total = torch.zeros((), device=target.device)
    for weight, side in zip(SIDE_WEIGHTS, logits, strict=False):
        total = total + weight * F.binary_cross_entropy_with_logits(side.float(), target)
    if iou_weight:
        prob = torch.sigmoid(logits[0].float())
        inter = (prob * target).sum(dim=(1, 2, 3))
        union = (prob + target - prob * target).sum(dim=(1, 2, 3))
        total = total + iou_weight * (1.0 - (inter + 1.0) / (union + 1.0)).mean()
    return total


class IsnetTrainer:
    """Fine-tunes `net` (an IS-Net `ModuleDict`, see `inference/isnet/network.py`) on `objects`."""

    def __init__(
        self,
        net: Any,
        crops: BoxCrops,
        objects: Sequence[BoxObject],
        options: IsnetTrainOptions,
        run_dir: Path,
        device: str = "cpu",
    ) -> None:
        import torch

        from scubasteve.inference.device import bf16_is_fast

        if not objects:
            raise InputError("there is no object to train on")
        if options.epochs < 1 or options.batch_size < 1:
            raise InputError(
                f"epochs and batch size must be at least 1 (got {options.epochs}, "
                f"{options.batch_size})"
            )
        self.net = net.to(device)
        self.crops = crops
        self.objects = list(objects)
        self.options = options
        self.run_dir = Path(run_dir)
        self.device = device
        self.bf16 = bf16_is_fast(device) if options.bf16 is None else bool(options.bf16)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=options.lr)
        self.epoch = 0
        self.rng = np.random.default_rng(options.seed)
        self.history: list[EpochRecord] = []

    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.pt"

    # -- checkpoints --------------------------------------------------------------------------

    def save_state(self) -> None:
        from scubasteve.weights.checkpoint import cpu_state, tree_digest, write_payload

        state = cpu_state(self.net.state_dict())
        payload = {
            "format": STATE_FORMAT,
            "format_version": STATE_VERSION,
            "epoch": self.epoch,
            "options": asdict(self.options),
            "rng": self.rng.bit_generator.state,
            "history": [asdict(e) for e in self.history],
            "optimizer": self.optimizer.state_dict(),
            "state_dict": state,
            "sha256": tree_digest(state),
        }
        write_payload(self.state_path, payload)

    def load_state(self) -> bool:
        """Continue from `state.pt` if the run folder has one (True) or start fresh (False)."""
        from scubasteve.weights.checkpoint import check_payload, read_payload

        if not self.state_path.is_file():
            return False
        payload = check_payload(
            self.state_path, read_payload(self.state_path), STATE_FORMAT, STATE_VERSION
        )
        if payload.get("options", {}).get("input_size") != self.options.input_size:
            raise InputError(
                "the run was started with another input size; start a new run or use the same "
                "options",
                self.state_path,
            )
        self.net.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.epoch = int(payload["epoch"])
        self.rng.bit_generator.state = payload["rng"]
        self.history = [EpochRecord(**e) for e in payload.get("history", [])]
        return True

    # -- the loop -----------------------------------------------------------------------------

    def batch(self, objects: Sequence[BoxObject]) -> tuple[Any, Any]:
        import torch

        pairs = [self.crops.sample(o, self.rng) for o in objects]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2).copy())
        y = torch.from_numpy(np.stack([p[1] for p in pairs])[:, None].copy())
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device)

    def step(self, objects: Sequence[BoxObject]) -> float:
        from scubasteve.inference.device import autocast, denormals_flushed
        from scubasteve.inference.isnet.network import forward

        x, y = self.batch(objects)
        self.optimizer.zero_grad(set_to_none=True)
        # Weights, gradients and Adam's moments drift into denormals as training goes on.
        with denormals_flushed(self.device):
            with autocast(self.device, self.bf16):
                logits = forward(self.net, x, sides=(1, 2, 3, 4, 5, 6))
            loss = side_loss(logits, y, self.options.iou_weight)
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def train(
        self,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        resume: bool = False,
    ) -> TrainRecord:
        """Run the remaining epochs; returns what was done (cancelled runs keep their state)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_state()
        opts = self.options
        steps = math.ceil(len(self.objects) / opts.batch_size)
        self.net.train()
        record = TrainRecord(self.epoch, self.history)
        try:
            while self.epoch < opts.epochs:
                epoch = self.epoch + 1
                if progress is not None:
                    progress(TrainProgress(epoch, opts.epochs, 0, steps, math.nan, {}))
                order = self.rng.permutation(len(self.objects))
                losses: list[float] = []
                start = time.perf_counter()
                for s in range(steps):
                    raise_if_cancelled(cancel)
                    chosen = [
                        self.objects[i]
                        for i in order[s * opts.batch_size : (s + 1) * opts.batch_size]
                    ]
                    losses.append(self.step(chosen))
                    if progress is not None:
                        progress(TrainProgress(epoch, opts.epochs, s + 1, steps, losses[-1], {}))
                seconds = time.perf_counter() - start
                self.epoch = epoch
                self.history.append(
                    EpochRecord(epoch, float(np.mean(losses)), len(self.objects), seconds)
                )
                self.save_state()
                self._log(self.history[-1])
        except Cancelled:
            record.cancelled = True
        finally:
            self.net.eval()
        record.epochs_done = self.epoch
        record.history = list(self.history)
        return record

    def _log(self, epoch: EpochRecord) -> None:
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(epoch)) + "\n")
