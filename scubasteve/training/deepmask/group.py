"""Which trainer a process runs and how a group of processes starts: one process, `--workers N`
local processes (`distributed.launch`) or Ray Train workers (`ray_train.train_on_ray`).

Kept apart from `distributed` and `ray_train` so that neither has to import the other's launcher:
`ray_train` builds on `distributed.DistributedTrainer`, and this module chooses between them.
"""

from __future__ import annotations

import argparse
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.training.deepmask import ray_train
from scubasteve.training.deepmask.distributed import DistributedTrainer, launch
from scubasteve.training.deepmask.ray_train import train_on_ray
from scubasteve.training.deepmask.trainer import Trainer


def trainer_class() -> type[Trainer]:
    """`DistributedTrainer` in a process group (its Ray Train form under Ray), else `Trainer`."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Trainer
    return ray_train.RayTrainer if ray_train.in_ray_train() else DistributedTrainer


def start_group_if_needed(args: argparse.Namespace, run: Any, *run_args: Any) -> int | None:
    """The launcher's part of `--workers N` and `--ray [ADDRESS]`: run `run(args, *run_args)` in
    every process of a new group (local processes, or Ray Train workers) and return the exit
    status. None where there is nothing to start: one process, or already inside a group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return None
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if getattr(args, "ray", None) is not None:
        return train_on_ray(args, run, *run_args)
    return launch(args, workers, run, *run_args) if workers and workers > 1 else None


def is_worker() -> bool:
    """True in a process of a group other than rank 0 (it neither prints nor registers)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_rank() > 0
