"""The weights manager: which models exist, which are installed, and getting them onto the machine.

Public API (used by the engines, the training code, the CLI and the app's models dialog):

- `list_models() -> list[ModelStatus]`: published models, then models trained here.
- `installed_path(name) -> Path | None`; `resolve_weights(name_or_path, kind=None) -> Path`, the
  one lookup every engine and trainer uses, which raises `WeightsNotInstalled` (an `InputError`)
  telling the user how to get a missing model.
- `download(name, progress=, cancel=, force=)`, `import_file(name, path, force=)`, `remove(name)`.
- `register_trained(name, kind, path, meta) -> Path` for models trained here.

Nothing here downloads unless `download` is called. Files live in
`scubasteve.core.paths.models_dir()`.
"""

from __future__ import annotations

from pathlib import Path

from scubasteve.core.errors import InputError
from scubasteve.core.paths import models_dir
from scubasteve.weights.fetch import (
    ChecksumMismatch,
    DownloadError,
    UnreachableError,
    human_size,
    part_meta_path,
)
from scubasteve.weights.install import download, import_file, register_trained
from scubasteve.weights.registry import (
    DEFAULT_MODELS,
    KINDS,
    ModelInfo,
    known_models,
)
from scubasteve.weights.store import (
    ModelStatus,
    existing_file,
    installed_path,
    list_models,
    lookup,
    model_status,
    part_path,
    sidecar_path,
    status_of,
    trained_entries,
    unknown_name_error,
)

__all__ = [
    "ChecksumMismatch",
    "DownloadError",
    "ModelInfo",
    "ModelStatus",
    "UnreachableError",
    "WeightsNotInstalled",
    "download",
    "import_file",
    "installed_path",
    "list_models",
    "model_status",
    "register_trained",
    "remove",
    "resolve_weights",
]


class WeightsNotInstalled(InputError):
    """A model was asked for by name but its file is not installed.

    The message says how to get it; `model_name` and `info` let the app offer the download.
    """

    def __init__(self, name: str, info: ModelInfo | None = None, detail: str = ""):
        self.model_name = name
        self.info = info
        super().__init__(_not_installed_message(name, info, detail))


def _not_installed_message(name: str, info: ModelInfo | None, detail: str) -> str:
    what = f"the model {name!r}"
    if info is not None:
        what += f" ({info.description})"
    lines = [f"{what} is not installed{': ' + detail if detail else ''}."]
    if info is not None and info.downloadable:
        size = human_size(info.display_size) if info.display_size else "size not published"
        if info.size is None and info.approx_size is not None:
            size = f"about {size}"
        lines.append(f"Download it ({size}) with:  scubasteve models download {name}")
        lines.append(
            f"Offline: fetch {info.url} on another machine, copy the file here and run:  "
            f"scubasteve models import {name} FILE"
        )
    else:
        kind = info.kind if info is not None else "KIND"
        lines.append(
            "It was trained on another machine or removed: train it again, or copy its file "
            f"here and run:  scubasteve models import {name} FILE --kind {kind}"
        )
    return "\n".join(lines)


#: Kinds whose models also serve where another kind is asked for: a SharpMask contains a DeepMask.
ALSO_SERVES = {"deepmask": ("sharpmask",)}


def resolve_weights(name_or_path: str | Path | None, kind: str | None = None) -> Path:
    """The weights file to load.

    A `Path`, or a string naming an existing file, is used as is. A model name must be installed
    (and be of `kind`, or of a kind that serves for it, `ALSO_SERVES`). None means the default model
    of `kind`: the registry default if installed, else the newest installed model of that kind
    trained here, else any installed published one, else the same for the kinds that serve for it.
    Raises `WeightsNotInstalled` (with download/import instructions, for `kind` itself) or
    `InputError`.
    """
    if name_or_path is None:
        if kind is None:
            raise ValueError("resolve_weights(None) needs a kind")
        try:
            return _default_for(kind)
        except WeightsNotInstalled as missing:
            for other in ALSO_SERVES.get(kind, ()):
                try:
                    return _default_for(other)
                except InputError:
                    continue
            raise missing
    if isinstance(name_or_path, Path):
        return existing_file(name_or_path)
    text = str(name_or_path).strip()
    found = lookup(text) if text else None
    if found is None:
        candidate = Path(text).expanduser()
        if candidate.exists() or any(sep in text for sep in ("/", "\\")) or candidate.suffix:
            return existing_file(candidate)
        raise unknown_name_error(text)
    info = found[0]
    if kind is not None and info.kind not in (kind, *ALSO_SERVES.get(kind, ())):
        raise InputError(f"the model {text!r} is a {info.kind} model, not a {kind} model")
    status = status_of(*found)
    if not status.installed:
        raise WeightsNotInstalled(text, info, status.problem or "")
    return status.path


def _default_for(kind: str) -> Path:
    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    default = DEFAULT_MODELS.get(kind)
    candidates = [default] if default else []
    candidates += [e.info.name for e in trained_entries() if e.info.kind == kind]
    candidates += [i.name for i in known_models() if i.kind == kind]
    for name in candidates:
        path = installed_path(name)
        if path is not None:
            return path
    fallback = default or (candidates[0] if candidates else None)
    found = lookup(fallback) if fallback else None
    if fallback is None or found is None:
        raise InputError(f"no {kind} model is known or installed")
    raise WeightsNotInstalled(fallback, found[0])


def remove(name: str) -> list[Path]:
    """Delete an installed model (its file, sidecar and any partial download); return what went.

    Raises `InputError` when there is nothing of that name to remove.
    """
    found = lookup(name)
    if found is None:
        raise unknown_name_error(name)
    info = found[0]
    candidates = [models_dir() / info.filename, sidecar_path(name), part_path(info)]
    candidates.append(part_meta_path(part_path(info)))
    removed = []
    for path in candidates:
        if path.is_file():
            try:
                path.unlink()
            except OSError as exc:
                raise InputError(f"cannot delete: {exc.strerror or exc}", path) from exc
            removed.append(path)
    if not removed:
        raise InputError(f"{name} is not installed; nothing to remove")
    return removed
