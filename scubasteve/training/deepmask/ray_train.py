"""`train deepmask | sharpmask | from-project --ray [ADDRESS]`: data-parallel training in Ray Train.

The same `DistributedTrainer` as `--workers N` on one machine, but the processes are Ray Train's
workers (a `TorchTrainer` with `ScalingConfig(num_workers=N, use_gpu=...)`), which may sit on
several nodes; Ray Train sets up the `torch.distributed` group (gloo on CPU, NCCL on GPU). Each
worker runs the same `GroupWork` (the command's typed job), so rank 0 writes the same run folder
(state.pt, last.pt, best.pt, log), registers the model and prints, exactly as on one machine.

Resume after a killed worker: the run folder is the checkpoint (state.pt after every epoch, as on
one machine). Rank 0 tells a small actor on the driver's side where the folder is; when a worker or
node dies, Ray Train restarts the group (up to `MAX_FAILURES` times) and the new workers continue
that run from its state.pt, as `--resume` would (`work(resume_in=run folder)`; a run with no
finished epoch starts again). A bad input (an `InputError`: missing data, a run folder in the
way) is not retried: the first worker that meets it records the message, the group restarts once,
every worker sees the message and stops, and the driver raises it.

Ray is imported only inside functions (ADR 0406); the run folder and the data must be at the same
path on every node (a shared file system), as for `annotate --ray`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scubasteve.core.errors import InputError
from scubasteve.training.deepmask.distributed import DistributedTrainer

if TYPE_CHECKING:
    from scubasteve.training.deepmask.group import GroupOptions, GroupWork

#: How many times a group whose worker or node died is restarted before the run gives up.
MAX_FAILURES = 3

_in_ray_train = False  # set in Ray Train's worker processes


def in_ray_train() -> bool:
    """True in a Ray Train worker of `train_on_ray`."""
    return _in_ray_train


class RayTrainer(DistributedTrainer):
    """A `DistributedTrainer` whose rank 0 tells the driver's record where its run folder is, so
    that a restarted group continues that run (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import ray

        super().__init__(*args, **kwargs)
        if not self.rank and _record is not None:
            ray.get(_record.started.remote(str(self.shared_dir.resolve())))


class _RunRecord:
    """Ray actor on the driver's side: the run folder of this run and the input problems met."""

    def __init__(self) -> None:
        self.run_dir: str | None = None
        self.problems: list[str] = []

    def started(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def add_problem(self, problem: str) -> None:
        self.problems.append(problem)

    def get(self) -> tuple[str | None, list[str]]:
        return self.run_dir, self.problems


_record: Any = None  # the driver's `_RunRecord`, in Ray Train's worker processes


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: the group's work in the group that Ray Train set up."""
    global _in_ray_train, _record
    import ray
    import ray.train
    import torch

    _in_ray_train, _record = True, config["record"]
    run_dir, problems = ray.get(_record.get.remote())
    if problems:  # a restart after an input problem: stop at once, the driver reports it
        return
    context = ray.train.get_context()
    if context.get_world_rank():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the process ends with the run)
    group: GroupOptions = config["group"]
    if not group.threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // context.get_local_world_size()))
    if config["use_gpu"]:
        from ray.train.torch import get_device

        torch.cuda.set_device(get_device())
    resume_in = None
    if run_dir is not None and (Path(run_dir) / "state.pt").is_file():
        # A restarted group (a worker or node was lost): continue the run from its state.pt.
        resume_in = Path(run_dir)
        print(f"a worker was lost: continuing the run in {run_dir} from its last epoch")
    try:
        config["work"](resume_in)
    except InputError as exc:
        ray.get(_record.add_problem.remote(str(exc)))
        raise


def _pool(ray: Any, group: GroupOptions) -> tuple[int, bool, float]:
    """(workers, use GPUs, CPUs per worker): one per GPU, else `--workers` or one per node, with
    CPUs shared out so that the group always fits (a group that does not fit waits forever)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    use_gpu = gpus > 0 and not group.device.startswith("cpu")
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    workers = group.workers or (gpus if use_gpu else max(1, nodes))
    if use_gpu and workers > gpus:
        raise InputError(
            f"--workers {workers} with --ray needs {workers} GPUs; the cluster has {gpus}"
        )
    cpus = float(resources.get("CPU", 1))
    return workers, use_gpu, round(min(1.0, cpus / workers), 3)


def train_on_ray(group: GroupOptions, work: GroupWork) -> int:
    """Run `work` in every worker of a Ray Train `TorchTrainer`; 0 when it ends."""
    from scubasteve.core.paths import data_dir
    from scubasteve.inference.ray_annotate import connected

    with connected(group.ray or None, log_to_driver=True) as ray:
        try:
            from ray.train import FailureConfig, RunConfig, ScalingConfig
            from ray.train.torch import TorchTrainer
        except ImportError as exc:
            raise InputError(
                '--ray needs Ray Train: pip install "scubasteve[scale]" (or "ray[train]")'
            ) from exc
        workers, use_gpu, cpus = _pool(ray, group)
        what = f"{workers} GPU worker(s)" if use_gpu else f"{workers} worker(s), {cpus:g} CPU each"
        print(f"Ray Train: {what}", flush=True)
        record = ray.remote(num_cpus=0)(_RunRecord).remote()
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={
                "group": group,
                "work": work,
                "record": record,
                "use_gpu": use_gpu,
            },
            scaling_config=ScalingConfig(
                num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus}
            ),
            run_config=RunConfig(
                name=f"scubasteve-{group.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(data_dir() / "ray-train"),
                failure_config=FailureConfig(max_failures=MAX_FAILURES),
            ),
        )
        sigint = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit()
        except Exception as exc:  # Ray Train's TrainingFailedError, after its retries
            found = ray.get(record.get.remote())[1]
            if found:
                raise InputError(found[0]) from exc
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"training on Ray stopped ({first}); continue with the same command plus --resume"
            ) from exc
        finally:  # Ray Train leaves its own Ctrl+C handler installed in the caller's process
            if sigint is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, sigint)
        found = ray.get(record.get.remote())[1]
    if found:
        raise InputError(found[0])
    return 0
