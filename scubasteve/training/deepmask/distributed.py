"""`train deepmask --workers N`: data-parallel DeepMask training with `torch.distributed`.

N processes (started here, torchrun-style, no Ray needed; gloo on CPU, NCCL on CUDA) each run the
ordinary `Trainer` on 1/N of every batch: the effective batch stays `--batch-size`, and so does the
number of steps per epoch. After each backward pass the gradients are averaged over the processes
(one flat all-reduce), so every process takes the same optimiser step and the weights stay equal.
Batch-norm statistics are per process during steps (as PyTorch's DDP does) and averaged after their
re-estimation at the end of each epoch. Each process draws its samples from its own generator,
seeded by (seed, rank, epoch), so a resumed run draws what an uninterrupted one would.

Only rank 0 writes the run folder (state.pt, last.pt, best.pt, log), registers the model and prints;
a killed worker stops the run, and `--resume` continues from the last finished epoch.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import math
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.training.deepmask.trainer import Trainer


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

    def run_epoch(self, cancel: CancelToken | None = None) -> Any:
        self.rng = np.random.default_rng([self.opts.seed, self.rank, self.epoch])
        return super().run_epoch(cancel)

    def recalibrate_batch_norm(self, batches: int) -> None:
        import torch.distributed as dist
        from torch import nn

        super().recalibrate_batch_norm(batches)
        for m in self.net.modules():
            if isinstance(m, nn.BatchNorm2d):
                for stat in (m.running_mean, m.running_var):
                    dist.all_reduce(stat)
                    stat /= self.world

    def load_state(self, path: Path | None = None) -> None:
        super().load_state(path or self.shared_dir / "state.pt")


def trainer_class() -> type[Trainer]:
    """`DistributedTrainer` inside a process group, else the plain `Trainer`."""
    import torch.distributed as dist

    return DistributedTrainer if dist.is_available() and dist.is_initialized() else Trainer


def is_worker() -> bool:
    """True in a process of a group other than rank 0 (it neither prints nor registers)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_rank() > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(args: argparse.Namespace, workers: int, run: Any, *run_args: Any) -> int:
    """Run `run(args, *run_args)` in `workers` processes of one gloo/NCCL group on this machine."""
    import torch.multiprocessing as mp

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    check_gpus(args.device, workers)
    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "handler"})
    port = _free_port()
    try:
        mp.spawn(_rank_main, (workers, port, plain, run, run_args), nprocs=workers, join=True)
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


def _rank_main(
    rank: int, world: int, port: int, args: argparse.Namespace, run: Any, run_args: tuple
) -> None:
    import torch
    import torch.distributed as dist

    if rank:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the process ends with the run)
    cuda = _uses_cuda(args.device) and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank % torch.cuda.device_count())
    if not getattr(args, "threads", None):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
    )
    try:
        code = run(args, *run_args)
    finally:
        dist.destroy_process_group()
    if code:
        raise SystemExit(code)
