"""`train deepmask --workers N`: data-parallel DeepMask training with `torch.distributed`.

N processes (started here, torchrun-style, no Ray needed; gloo on CPU, NCCL on CUDA) each run the
ordinary `Trainer` on 1/N of every batch: the effective batch stays `--batch-size`, and so does the
number of steps per epoch. After each backward pass the gradients are averaged over the processes
(one flat all-reduce), so every process takes the same optimiser step and the weights stay equal.
Batch norm normalises with the statistics of the whole effective batch: each batch-norm layer
all-reduces its per-channel sums (a differentiable all-reduce, so the backward pass is that of one
process on the whole batch). PyTorch's `SyncBatchNorm` does the same but refuses CPU tensors, so
gloo runs could not use it. Each process draws its samples from its own generator, seeded by
(seed, rank, epoch), so a resumed run draws what an uninterrupted one would.

Only rank 0 writes the run folder (state.pt, last.pt, best.pt, log), registers the model and prints;
a killed worker stops the run, and `--resume` continues from the last finished epoch. `--ray`
runs the same trainer in Ray Train's workers instead (`ray_train`).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import math
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.training.deepmask.trainer import Trainer, TrainResult

if TYPE_CHECKING:
    from scubasteve.training.deepmask.group import GroupOptions, GroupWork


class AveragedGradients:
    """An optimiser whose `step` first averages the gradients over all processes."""

    def __init__(self, optimizer: Any, world: int) -> None:
        self.optimizer, self.world = optimizer, world

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        import torch
        import torch.distributed as dist

        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)


class DistributedTrainer(Trainer):
    """A `Trainer` for one process of a `torch.distributed` group (see the module docstring)."""

    def __init__(self, net: Any, config: Any, train: Any, val: Any, options: Any, run_dir: Path,
                 *args: Any, **kwargs: Any) -> None:  # fmt: skip
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if options.batch_size % self.world:
            raise InputError(
                f"--batch-size {options.batch_size} does not split over {self.world} workers"
            )
        steps = options.batches_per_epoch or max(
            2, math.ceil(2 * len(train.instances) / options.batch_size)
        )
        options = dataclasses.replace(
            options, batch_size=options.batch_size // self.world, batches_per_epoch=steps
        )
        self.shared_dir = Path(run_dir)
        if self.rank:  # only rank 0 writes the run folder; the others a scratch one
            run_dir = Path(tempfile.mkdtemp(prefix=f"scubasteve-rank{self.rank}-"))
            atexit.register(shutil.rmtree, run_dir, ignore_errors=True)
        super().__init__(net, config, train, val, options, run_dir, *args, **kwargs)
        for tensor in [*self.net.parameters(), *self.net.buffers()]:
            dist.broadcast(tensor.data, src=0)
        self.optimizer = AveragedGradients(self.optimizer, self.world)
        self._norms = synchronise_batch_norm(self.net)

    def fit(self, meta: dict[str, Any] | None = None, stop: Any = None) -> TrainResult:
        try:
            return super().fit(meta, stop)
        finally:  # the network leaves as it came: plain batch norm (its eval mode never syncs)
            for m in self._norms:
                m.__dict__.pop("forward", None)

    def run_epoch(self, cancel: CancelToken | None = None) -> Any:
        self.rng = np.random.default_rng([self.opts.seed, self.rank, self.epoch])
        return super().run_epoch(cancel)

    def load_state(self, path: Path | None = None) -> None:
        super().load_state(path or self.shared_dir / "state.pt")


def synchronise_batch_norm(net: Any) -> list[Any]:
    """Make every `BatchNorm2d` of `net` normalise over the whole group's batch while training;
    returns the layers changed. Their parameters, buffers and state dict stay those of plain
    ones."""
    import types

    from torch import nn

    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.forward = types.MethodType(_group_batch_norm, m)
    return norms


def _group_batch_norm(self: Any, x: Any) -> Any:
    """`BatchNorm2d.forward` with the batch statistics of all processes (training mode only)."""
    import torch
    from torch import nn

    if not self.training:
        return nn.BatchNorm2d.forward(self, x)
    xf = x.float()
    c = xf.shape[1]
    stats = torch.cat(
        [xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), xf.new_full((1,), xf.numel() / c)]
    )
    stats = _summed_over_group()(stats)
    n = stats[-1]
    mean = stats[:c] / n
    var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
    if self.track_running_stats:
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            unbiased = var * (n / (n - 1).clamp_min(1))
            self.running_mean.mul_(1 - f).add_(f * mean)
            self.running_var.mul_(1 - f).add_(f * unbiased)
    y = (xf - mean.view(1, c, 1, 1)) * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
    if self.affine:
        y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
    return y.to(x.dtype)


@functools.cache
def _summed_over_group() -> Any:
    """A differentiable all-reduce (sum): its backward pass sums the gradients over the group.
    (`torch.distributed.nn.functional.all_reduce` does this too, but is deprecated.)"""
    import torch
    import torch.distributed as dist

    class SumOverGroup(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, tensor: Any) -> Any:
            tensor = tensor.clone()
            dist.all_reduce(tensor)
            return tensor

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            grad = grad.clone()
            dist.all_reduce(grad)
            return grad

    return SumOverGroup.apply


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(group: GroupOptions, workers: int, work: GroupWork) -> int:
    """Run `work()` in `workers` processes of one gloo/NCCL group on this machine."""
    import torch.multiprocessing as mp

    check_gpus(group.device, workers)
    port = _free_port()
    try:
        mp.spawn(_rank_main, (workers, port, group, work), nprocs=workers, join=True)
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as exc:
        raise InputError(
            f"training worker {exc.error_index} stopped ({exc}); continue with --resume"
        ) from exc
    return 0


def _uses_cuda(device: str) -> bool:
    import torch

    base = (device or "auto").split(":", 1)[0]
    return base == "cuda" or (base == "auto" and torch.cuda.is_available())


def check_gpus(device: str, workers: int) -> None:
    """Refuse more CUDA processes than GPUs: NCCL needs a GPU of its own per process (two on one
    GPU fail at the first all-reduce, or wait there), so say so before anything starts."""
    import torch

    if not _uses_cuda(device) or not torch.cuda.is_available():
        return  # gloo on the CPU (or the CUDA fallback the processes log themselves)
    gpus = torch.cuda.device_count()
    if workers > gpus:
        raise InputError(
            f"--workers {workers} trains with one GPU per process, but this machine has {gpus} "
            f"GPU{'s' if gpus != 1 else ''}: use --workers {gpus}"
            + (" (or leave it out)" if gpus == 1 else "")
            + ", or --device cpu for processes on the CPU"
        )


def _rank_main(rank: int, world: int, port: int, group: GroupOptions, work: GroupWork) -> None:
    import torch
    import torch.distributed as dist

    if rank:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the process ends with the run)
    cuda = _uses_cuda(group.device) and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank % torch.cuda.device_count())
    if not group.threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
    )
    try:
        code = work()
    finally:
        dist.destroy_process_group()
    if code:
        raise SystemExit(code)
