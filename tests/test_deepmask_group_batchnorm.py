"""Batch norm over the whole group: 2 gloo processes on halves of a batch give one process's step.

Each process computes the loss of its half (mean over its samples); the gradients are averaged
over the group. With plain per-process batch norm that differs from one process on the whole batch
(the statistics of 4 samples are not those of 8); with `synchronise_batch_norm` it must agree to
float rounding: the gradients, the batch-norm running statistics and the loss. (Dropout, the
only other per-sample randomness, is switched off here: its masks come from each process's
generator.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scubasteve.inference.deepmask import network as N
from scubasteve.inference.deepmask.config import tiny_config

CFG = tiny_config(trunk_width=8)
BATCH = 8


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    x = torch.as_tensor(
        rng.normal(size=(BATCH, 3, CFG.input_size, CFG.input_size)), dtype=torch.float32
    )
    y = torch.as_tensor(
        rng.random((BATCH, CFG.mask_size, CFG.mask_size)) > 0.5, dtype=torch.float32
    )
    return x, y


def _step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.train()
    for m in net.modules():  # dropout draws other masks for 4 + 4 samples than for 8
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    logits, score = N.forward_crops(net, CFG, x)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + score.mean()
    loss.backward()
    return float(loss.detach())


def _outcome(net: torch.nn.Module, loss: float) -> dict[str, torch.Tensor]:
    out = {f"grad.{k}": p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    out |= {f"buf.{k}": b.clone() for k, b in net.named_buffers() if b.is_floating_point()}
    out["loss"] = torch.tensor(loss)
    return out


def _rank(rank: int, world: int, port: int, folder: str, synced: bool) -> None:
    import torch.distributed as dist

    from scubasteve.training.deepmask.distributed import synchronise_batch_norm

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(0)
        net = N.build_network(CFG)
        if synced:
            synchronise_batch_norm(net)
        x, y = _batch()
        half = BATCH // world
        loss = _step(net, x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half])
        for p in net.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world
        value = torch.tensor(loss)
        dist.all_reduce(value)
        if rank == 0:
            torch.save(_outcome(net, float(value) / world), Path(folder) / "group.pt")
    finally:
        dist.destroy_process_group()


def _in_group(tmp_path: Path, synced: bool) -> dict[str, torch.Tensor]:
    import torch.multiprocessing as mp

    from scubasteve.training.deepmask.distributed import _free_port

    mp.spawn(_rank, (2, _free_port(), str(tmp_path), synced), nprocs=2, join=True)
    return torch.load(tmp_path / "group.pt")


def _one_process() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = N.build_network(CFG)
    x, y = _batch()
    return _outcome(net, _step(net, x, y))


def _worst(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest difference over all tensors, relative to each tensor's largest magnitude."""
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)) for k in a)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_with_group_batch_norm_take_the_step_of_one_process(tmp_path: Path) -> None:
    one = _one_process()
    synced = _in_group(tmp_path, synced=True)
    assert _worst(synced, one) < 1e-4  # float rounding only
    plain = _in_group(tmp_path, synced=False)
    assert _worst(plain, one) > 1e-2  # the check can fail: per-process batch norm differs


def test_eval_mode_and_a_single_process_are_plain_batch_norm() -> None:
    """Outside training mode the layers never talk to the group (validation runs on rank 0 only)."""
    from scubasteve.training.deepmask.distributed import synchronise_batch_norm

    torch.manual_seed(0)
    net = N.build_network(CFG)
    x, _ = _batch()
    net.eval()
    with torch.no_grad():
        before = N.forward_crops(net, CFG, x)[0]
        synchronise_batch_norm(net)  # no process group: would raise if eval mode synced
        after = N.forward_crops(net, CFG, x)[0]
    assert torch.equal(before, after)
