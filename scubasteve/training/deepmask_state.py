"""Saving and restoring a DeepMask training run (`state.pt` in the run folder).

The state holds the network, the optimiser, the epoch, the history and every random generator the
run uses, in our checkpoint container (`scubasteve.inference.deepmask.checkpoint`) with a checksum of
the weights and one of the optimiser state: a file that was cut short or damaged is refused, never
half-loaded. It is written after each epoch with an atomic replace, so a kill at any moment leaves
the previous complete state.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.checkpoint import (
    FORMAT_VERSION,
    TRAINING_FORMAT,
    check_payload,
    cpu_state,
    read_payload,
    tree_digest,
    write_payload,
)
from scubasteve.inference.deepmask.config import DeepMaskConfig


def save_training_state(trainer: Any, path: Path) -> None:
    import torch

    state = cpu_state(trainer.net.state_dict())
    version, internal, gauss = random.getstate()
    payload = {
        "format": TRAINING_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": trainer.cfg.to_dict(),
        "options": {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(trainer.opts).items()
        },
        "epoch": trainer.epoch,
        "best_iou": trainer.best_iou,
        "history": [asdict(h) for h in trainer.history],
        "state_dict": state,
        "optimizer": trainer.optimizer.state_dict(),
        "rng": {
            "numpy": trainer.rng.bit_generator.state,
            "torch": torch.get_rng_state(),
            "python": list(internal),
            "python_version": version,
            "python_gauss": gauss,
        },
    }
    payload["sha256"] = tree_digest(state)
    payload["optimizer_sha256"] = tree_digest(payload["optimizer"])
    write_payload(path, payload)


def restore_training_state(trainer: Any, path: Path) -> None:
    import torch

    from scubasteve.training.deepmask_train import EpochResult

    payload = check_payload(path, read_payload(path, "cpu"), TRAINING_FORMAT)
    if payload.get("optimizer_sha256") != tree_digest(payload.get("optimizer")):
        raise InputError(
            "the optimiser state does not match its checksum; the file is damaged", path
        )
    saved = DeepMaskConfig.from_dict(dict(payload["config"]))
    if saved != trainer.cfg:
        raise InputError("the run was started with another network configuration", path)
    trainer.net.load_state_dict(payload["state_dict"])
    trainer.optimizer.load_state_dict(payload["optimizer"])
    trainer.epoch = int(payload["epoch"])
    trainer.best_iou = float(payload.get("best_iou", -1.0))
    trainer.history = [EpochResult(**h) for h in payload.get("history", [])]
    rng = payload["rng"]
    trainer.rng.bit_generator.state = rng["numpy"]
    torch.set_rng_state(rng["torch"])
    random.setstate((rng["python_version"], tuple(rng["python"]), rng["python_gauss"]))
