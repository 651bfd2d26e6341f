"""Which trainer a process runs and how a group of processes starts: one process, `--workers N`
local processes (`distributed.launch`) or Ray Train workers (`ray_train.train_on_ray`).

A group is described by `GroupOptions` (typed, picklable) and runs a `GroupWork` in every process:
a picklable callable of the training layer (`jobs.TrainWork`), never the command line's handler.
Kept apart from `distributed` and `ray_train` so that neither has to import the other's launcher:
`ray_train` builds on `distributed.DistributedTrainer`, and this module chooses between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scubasteve.core.errors import InputError
from scubasteve.training.deepmask import ray_train
from scubasteve.training.deepmask.distributed import DistributedTrainer, launch
from scubasteve.training.deepmask.ray_train import train_on_ray
from scubasteve.training.deepmask.trainer import Trainer


@dataclass(frozen=True)
class GroupOptions:
    """How a training run is spread over processes.

    `workers`: data-parallel processes (None: one here; on Ray one per GPU or per node). `ray`:
    None runs on this machine; "" starts a local Ray for the run; else a cluster address.
    `device` and `threads` (torch threads per process; None shares the CPUs out) are what the
    launchers need before the work starts; `name` names a Ray Train run.
    """

    workers: int | None = None
    ray: str | None = None
    device: str = "auto"
    threads: int | None = None
    name: str = "train"


class GroupWork(Protocol):
    """What every process of a group runs; picklable (it travels to the other processes).

    `resume_in`: a restarted Ray group continues the run in this folder (None: as planned).
    Returns the exit status.
    """

    def __call__(self, resume_in: Path | None = None) -> int: ...


def trainer_class() -> type[Trainer]:
    """`DistributedTrainer` in a process group (its Ray Train form under Ray), else `Trainer`."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Trainer
    return ray_train.RayTrainer if ray_train.in_ray_train() else DistributedTrainer


def start_group_if_needed(group: GroupOptions, work: GroupWork) -> int | None:
    """Run `work` in every process of a new group (local processes, or Ray Train workers) and
    return the exit status. None where there is nothing to start: one process (the caller runs
    `work()` itself), or already inside a group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return None
    if group.workers is not None and group.workers < 1:
        raise InputError(f"--workers must be at least 1, got {group.workers}")
    if group.ray is not None:
        return train_on_ray(group, work)
    if group.workers and group.workers > 1:
        return launch(group, group.workers, work)
    return None


def is_worker() -> bool:
    """True in a process of a group other than rank 0 (it neither prints nor registers)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_rank() > 0
