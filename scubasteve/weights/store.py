"""The models folder on disk: file names, JSON sidecars, atomic copies, models trained here.

Layout (flat, so that a user can look inside): ``<models_dir>/<filename>`` for each model plus
``<models_dir>/<name>.json``, a sidecar recording where the file came from, its size and SHA-256.
A model trained here is known only through its sidecar (``"trained": true``); published models are
recognised by their registry file name even without a sidecar (a file copied in by hand counts).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scubasteve.core.atomic import atomic_write_json, replace_with, temp_file_beside
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError, is_disk_full, os_error_problem
from scubasteve.core.paths import models_dir
from scubasteve.io.json_files import object_at, read_json
from scubasteve.weights.registry import (
    ModelInfo,
    format_from_suffix,
    known_model,
    known_models,
)

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    """A model name: letters, digits, '.', '_', '-', up to 64, not starting with a symbol."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith((".json", ".part")):
        raise InputError(
            f"{name!r} is not a valid model name (use letters, digits, '.', '_' or '-', "
            "at most 64 characters, starting with a letter or digit)"
        )
    return name


def sidecar_path(name: str) -> Path:
    return models_dir() / f"{name}.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def jsonable(obj: Any) -> Any:
    """`obj` made JSON-safe: numpy scalars and arrays, paths, datetimes; NaN and inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    for attr in ("tolist", "item"):  # numpy arrays and scalars, torch tensors
        if hasattr(obj, attr):
            with contextlib.suppress(Exception):
                return jsonable(getattr(obj, attr)())
    return str(obj)


def write_sidecar(name: str, data: dict[str, Any]) -> None:
    atomic_write_json(sidecar_path(name), jsonable(data))


def read_sidecar(name: str) -> dict[str, Any] | None:
    path = sidecar_path(name)
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except InputError as exc:
        log.warning("ignoring a damaged model sidecar: %s", exc)
        return None
    return data if isinstance(data, dict) else None


def sidecar_of_file(path: Path) -> dict[str, Any] | None:
    """The sidecar of the model file at `path`, if it lies in the models folder and has one."""
    path = Path(path)
    folder = models_dir()
    if not folder.is_dir() or path.parent.resolve() != folder.resolve():
        return None
    for sidecar in sorted(folder.glob("*.json")):
        data = read_sidecar(sidecar.stem)
        if data is not None and data.get("file") == path.name:
            return data
    return None


@dataclass(frozen=True)
class TrainedEntry:
    info: ModelInfo
    meta: dict[str, Any]
    created: str


def trained_entries() -> list[TrainedEntry]:
    """Models trained (or imported under a new name) on this machine, newest first."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".part.json"):
            continue
        data = read_sidecar(path.stem)
        if not data or not data.get("trained"):
            continue
        entry = _entry_from_sidecar(path.stem, data)
        if entry is not None:
            entries.append(entry)
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries


def trained_entry(name: str) -> TrainedEntry | None:
    if not _NAME_RE.match(name):
        return None
    data = read_sidecar(name)
    if not data or not data.get("trained"):
        return None
    return _entry_from_sidecar(name, data)


def _entry_from_sidecar(name: str, data: dict[str, Any]) -> TrainedEntry | None:
    filename = data.get("file")
    kind = data.get("kind")
    if (
        not isinstance(filename, str)
        or not isinstance(kind, str)
        or Path(filename).name != filename
    ):
        log.warning("ignoring model sidecar %s: no valid 'file' or 'kind'", sidecar_path(name))
        return None
    meta = object_at(data, "meta")
    classes = meta.get("class_names") or ()
    info = ModelInfo(
        name=name,
        kind=kind,
        filename=filename,
        url=None,
        size=data.get("size") if isinstance(data.get("size"), int) else None,
        sha256=data.get("sha256") if isinstance(data.get("sha256"), str) else None,
        license=str(meta.get("license", "your own model")),
        description=str(meta.get("description") or f"{kind} trained here"),
        class_names=tuple(str(c) for c in classes) if isinstance(classes, list) else (),
        format=str(data.get("format") or format_from_suffix(filename)),
    )
    return TrainedEntry(info=info, meta=meta, created=str(data.get("created", "")))


def copy_to_temp(
    src: Path, folder: Path, cancel: CancelToken | None = None
) -> tuple[Path, int, str]:
    """Copy `src` to a new temporary file in `folder` (same file system as the final place).

    Returns (temporary path, size, SHA-256 hex). The caller verifies, then `os.replace`s it. On any
    failure the temporary file is removed; a full disk gives an `InputError` that says so.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        out, tmp = temp_file_beside(folder, src.name)
    except OSError as exc:
        problem = os_error_problem(exc, "cannot create a file in the models folder", "folder")
        raise InputError(problem, folder) from exc
    digest = hashlib.sha256()
    size = 0
    try:
        with out, open(src, "rb") as fh:
            while block := fh.read(1 << 20):
                raise_if_cancelled(cancel)
                _write(out, block)
                digest.update(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        problem = os_error_problem(exc, "cannot copy into the models folder")
        where = folder if is_disk_full(exc) else src
        raise InputError(f"{problem}; nothing was installed", where) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp, size, digest.hexdigest()


def _write(fh: Any, block: bytes) -> None:
    # One place where installed bytes are written, so tests can simulate a full disk.
    fh.write(block)


def place(tmp: Path, dest: Path) -> None:
    """Move a verified temporary file into place atomically (same folder, so os.replace)."""
    # mkstemp makes 0600 files; weights need not be private. (No umask read: it is process-wide
    # and racy to query while GUI worker threads run.)
    replace_with(tmp, dest, mode=0o644)


@dataclass(frozen=True)
class ModelStatus:
    """A model and its state on this machine.

    `path`: where its file is (or would be) installed. `partial_bytes`: size of an interrupted
    download waiting to be resumed. `problem`: why an existing file does not count as installed
    (for example a wrong size). `meta`: the sidecar's training metadata for models trained here.
    """

    info: ModelInfo
    installed: bool
    path: Path
    trained: bool = False
    partial_bytes: int = 0
    problem: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> str:
        return self.info.kind


def part_path(info: ModelInfo) -> Path:
    return models_dir() / f"{info.filename}.part"


def status_of(
    info: ModelInfo, trained: bool = False, meta: dict[str, Any] | None = None
) -> ModelStatus:
    path = models_dir() / info.filename
    problem = None
    installed = path.is_file()
    size = path.stat().st_size if installed else 0
    if installed and info.size is not None and size != info.size and not _other_form(info, size):
        problem = (
            f"the file is {path.stat().st_size:,} bytes, expected {info.size:,} "
            "(damaged or another file)"
        )
        installed = False
    part = part_path(info)
    partial = part.stat().st_size if part.is_file() else 0
    return ModelStatus(info, installed, path, trained, partial, problem, dict(meta or {}))


def _other_form(info: ModelInfo, size: int) -> bool:
    """Whether an installed file of another size is another form of the model that `models import`
    read and recorded (see `ModelInfo.other_forms`)."""
    if not info.other_forms:
        return False
    record = read_sidecar(info.name) or {}
    return record.get("size") == size


def lookup(name: str) -> tuple[ModelInfo, bool, dict[str, Any]] | None:
    info = known_model(name)
    if info is not None:
        return info, False, {}
    entry = trained_entry(name)
    if entry is not None:
        return entry.info, True, entry.meta
    return None


def model_status(name: str) -> ModelStatus | None:
    """The status of one model by name, or None for a name nobody knows."""
    found = lookup(name)
    return None if found is None else status_of(*found)


def list_models() -> list[ModelStatus]:
    """Every model: the published ones in registry order, then those trained here (newest first)."""
    known = {info.name for info in known_models()}
    statuses = [status_of(info) for info in known_models()]
    statuses += [
        status_of(e.info, True, e.meta) for e in trained_entries() if e.info.name not in known
    ]
    return statuses


def installed_path(name: str) -> Path | None:
    """The installed file of model `name`, or None (not installed, damaged, or unknown name)."""
    status = model_status(name)
    return status.path if status is not None and status.installed else None


def unknown_name_error(name: str) -> InputError:
    names = ", ".join(s.name for s in list_models())
    return InputError(
        f"unknown model {name!r}: it is neither a model name nor an existing file. "
        f"Known models: {names} (see `scubasteve models list`)"
    )


def existing_file(path: Path) -> Path:
    path = path.expanduser()
    if path.is_dir():
        raise InputError("is a folder, not a weights file", path)
    if not path.is_file():
        raise InputError("weights file not found", path)
    return path
