"""Converting and registering DeepMask weights (through the weights manager).

`scubasteve.weights` (the weights manager) resolves names to files (`resolve_weights`; a SharpMask
serves where a DeepMask is asked for) and registers models trained here; this module adds what is
particular to DeepMask: published files (`.t7`, `.pth.tar`) are converted on first use with the
conversion cached.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.core.paths import cache_dir
from scubasteve.weights import register_trained, resolve_weights

log = logging.getLogger(__name__)


def resolve(name_or_path: str | Path | None) -> Path:
    """`resolve_weights(name_or_path, kind="deepmask")`, under the name `inference/engines.py`
    still imports (to go when it calls the weights manager directly)."""
    return resolve_weights(name_or_path, kind="deepmask")


def register(name: str, kind: str, path: Path, meta: dict[str, Any]) -> Path:
    """Install a trained `.pt` under `name` so the engine loads it by name; returns its path."""
    return Path(register_trained(name, kind, path, meta))


def heldout_quality(path: Path) -> dict[str, float] | None:
    """The held-out measurement recorded when the model at `path` was installed, if any.

    Models trained here carry ``meta.heldout`` in their sidecar (top-1 and best-of-ten mean IoU of
    the DeepMask engine and of the classic engine on the same held-out objects). Published models
    and plain files have none.
    """
    from scubasteve.weights.store import sidecar_of_file

    meta = (sidecar_of_file(path) or {}).get("meta")
    record = meta.get("heldout") if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else None


def load_weights_file(path: Path) -> Any:
    """`LoadedWeights` of any supported file; published formats are converted once and cached."""
    from scubasteve.inference.deepmask.checkpoint import load_weights, save_weights
    from scubasteve.inference.deepmask.convert import load_any, sniff_format

    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found" if not path.exists() else "not a file", path)
    if sniff_format(path) == "torch-zip":
        loaded = load_any(path)
        return loaded
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[
        :24
    ]
    cached = cache_dir() / "deepmask-converted" / f"{key}.pt"
    if cached.is_file():
        try:
            return load_weights(cached)
        except InputError as exc:
            log.warning("converted copy unusable, converting again: %s", exc)
    loaded = load_any(path)
    if loaded.meta.get("trunk_only"):
        return loaded
    try:
        save_weights(
            cached, loaded.state_dict, loaded.config, {**loaded.meta, "source_file": str(path)}
        )
    except InputError as exc:  # a read-only cache only costs time
        log.warning("could not cache the converted weights: %s", exc)
    return loaded
