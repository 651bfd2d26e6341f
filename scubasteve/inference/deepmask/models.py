"""Finding, converting and registering DeepMask weights (through the weights manager).

`scubasteve.inference.weights` (the weights manager) resolves names to files and registers models
trained here. Until it is present this module falls back to the same flat layout
(``<models_dir>/<name>.pt`` plus ``<name>.json``) so that training and the engine work either way.
Published files (`.t7`, `.pth.tar`) are converted on first use and the conversion is cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.core.paths import cache_dir, models_dir

log = logging.getLogger(__name__)

KINDS = ("deepmask", "sharpmask")


class _FallbackWeightsNotInstalled(InputError):
    """No DeepMask weights are installed (stand-in until the weights manager is present)."""


def _manager() -> Any:
    try:
        from scubasteve.inference import weights
    except ImportError:
        return None
    return weights


def weights_not_installed_error() -> type[InputError]:
    mgr = _manager()
    return mgr.WeightsNotInstalled if mgr is not None else _FallbackWeightsNotInstalled


def resolve(name_or_path: str | Path | None, kind: str = "deepmask") -> Path:
    """The weights file for a name, a path, or None (the default installed model of `kind`)."""
    mgr = _manager()
    if mgr is not None:
        if name_or_path is None:
            try:
                return Path(mgr.resolve_weights(None, kind=kind))
            except mgr.WeightsNotInstalled:
                if kind == "deepmask":
                    # A SharpMask contains a DeepMask: use it when it is all there is.
                    return Path(mgr.resolve_weights(None, kind="sharpmask"))
                raise
        return Path(mgr.resolve_weights(name_or_path))
    return _fallback_resolve(name_or_path, kind)


def _fallback_resolve(name_or_path: str | Path | None, kind: str) -> Path:
    folder = models_dir()
    if name_or_path is not None:
        text = str(name_or_path)
        candidate = Path(text).expanduser()
        if candidate.is_file():
            return candidate
        for suffix in (".pt", ".t7", ".pth.tar", ".pth"):
            path = folder / f"{text}{suffix}"
            if path.is_file():
                return path
        if isinstance(name_or_path, Path) or "/" in text or "\\" in text or candidate.suffix:
            raise InputError("weights file not found", candidate)
        raise _FallbackWeightsNotInstalled(
            f"the DeepMask model {text!r} is not installed in {folder}; train one with "
            "`scubasteve train deepmask` or import a file with `scubasteve models import`"
        )
    entries = []
    for sidecar in folder.glob("*.json") if folder.is_dir() else []:
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        file = folder / str(data.get("file", ""))
        if (
            data.get("kind") in (kind, "sharpmask" if kind == "deepmask" else kind)
            and file.is_file()
        ):
            entries.append((file.stat().st_mtime, data.get("kind") == kind, file))
    if not entries:
        raise _FallbackWeightsNotInstalled(
            f"no {kind} weights are installed (looked in {folder}). Train them with `scubasteve "
            "train deepmask`, or import published ones with `scubasteve models import`; until then "
            "the classic engine serves alone"
        )
    entries.sort(key=lambda e: (e[1], e[0]))
    return entries[-1][2]


def register(name: str, kind: str, path: Path, meta: dict[str, Any]) -> Path:
    """Install a trained `.pt` under `name` so the engine loads it by name; returns its path."""
    mgr = _manager()
    if mgr is not None:
        return Path(mgr.register_trained(name, kind, path, meta))
    from scubasteve.io.atomic import atomic_write_bytes, atomic_write_json

    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{name}.pt"
    if Path(path).resolve() != dest.resolve():
        atomic_write_bytes(dest, Path(path).read_bytes())
    atomic_write_json(
        folder / f"{name}.json",
        {
            "name": name,
            "kind": kind,
            "file": dest.name,
            "trained": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "meta": meta,
        },
    )
    return dest


def heldout_quality(path: Path) -> dict[str, float] | None:
    """The held-out measurement recorded when the model at `path` was installed, if any.

    Models trained here carry ``meta.heldout`` in their sidecar (top-1 and best-of-ten mean IoU of
    the DeepMask engine and of the classic engine on the same held-out objects). Published models
    and plain files have none.
    """
    path = Path(path)
    folder = models_dir()
    if not folder.is_dir() or path.parent.resolve() != folder.resolve():
        return None
    for sidecar in folder.glob("*.json"):
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("file") == path.name:
            record = (data.get("meta") or {}).get("heldout")
            return record if isinstance(record, dict) else None
    return None


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
