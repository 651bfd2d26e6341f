"""Saving and restoring a DeepMask training run (`state.pt` in the run folder).

The trainer says what its state is (`Trainer.state_dict()`: the network, the optimiser, the epoch,
the history and every random generator the run uses) and how to take it back
(`Trainer.load_state_dict`); this module only puts that state in a file and reads it back. The file
is our checkpoint container (`scubasteve.inference.deepmask.checkpoint`) with a checksum of the
weights and one of the optimiser state: a file that was cut short or damaged is refused, never
half-loaded. It is written after each epoch with an atomic replace, so a kill at any moment leaves
the previous complete state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask.checkpoint import FORMAT_VERSION, TRAINING_FORMAT
from scubasteve.weights.checkpoint import check_payload, read_payload, tree_digest, write_payload


def save_training_state(state: dict[str, Any], path: Path) -> None:
    """Write a trainer's `state_dict()` to `path` atomically, with checksums."""
    payload = {"format": TRAINING_FORMAT, "format_version": FORMAT_VERSION, **state}
    payload["sha256"] = tree_digest(payload["state_dict"])
    payload["optimizer_sha256"] = tree_digest(payload["optimizer"])
    write_payload(path, payload)


def read_training_state(path: Path) -> dict[str, Any]:
    """The state saved at `path`; `InputError` for a damaged, cut short or foreign file."""
    payload = check_payload(path, read_payload(path, "cpu"), TRAINING_FORMAT, FORMAT_VERSION)
    if payload.get("optimizer_sha256") != tree_digest(payload.get("optimizer")):
        raise InputError(
            "the optimiser state does not match its checksum; the file is damaged", path
        )
    return payload
