"""Putting model files in place: download, import of a local file, registration of trained models.

Every path ends the same way: the bytes go to a temporary or `.part` file in the models folder, are
verified (size, SHA-256 where published, the content against the model's kind: `CONTENT_CHECKS`),
then `os.replace`d into place, and a JSON sidecar records where they came from. A file imported
under a name of one's own (`--kind`) gets the same content check. See `scubasteve.weights`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scubasteve import __version__
from scubasteve.core.cancel import CancelToken
from scubasteve.core.errors import InputError
from scubasteve.core.paths import models_dir
from scubasteve.core.progress import Progress
from scubasteve.weights.fetch import (
    ChecksumMismatch,
    DownloadError,
    UnreachableError,
    discard_partial,
    fetch,
    file_sha256,
    read_part_meta,
)
from scubasteve.weights.registry import (
    KINDS,
    ModelInfo,
    format_from_suffix,
    known_model,
    known_models,
    sniff_problem,
)
from scubasteve.weights.store import (
    check_name,
    copy_to_temp,
    existing_file,
    now_iso,
    part_path,
    place,
    read_sidecar,
    sidecar_path,
    status_of,
    trained_entry,
    unknown_name_error,
    write_sidecar,
)

_busy_lock = threading.Lock()
_busy: set[str] = set()


@contextlib.contextmanager
def _exclusive(name: str):  # type: ignore[no-untyped-def]
    # Two downloads of one model in one process (two dialogs, a double click) would share a .part.
    with _busy_lock:
        if name in _busy:
            raise DownloadError(f"{name} is already being downloaded")
        _busy.add(name)
    try:
        yield
    finally:
        with _busy_lock:
            _busy.discard(name)


def _verify(
    info: ModelInfo,
    path: Path,
    cancel: CancelToken | None = None,
    *,
    other_forms: bool = False,
) -> tuple[int, str]:
    """(size, sha256) of `path` after checking them against `info`.

    The file's content is checked against the model's kind (`CONTENT_CHECKS`) where no checksum
    is published, so that an HTML error page, a file of another kind or a damaged zip is not
    installed; kinds whose check reads the model itself (SAM 2, IS-Net) are read in any case, since
    that says best what a wrong file is. `other_forms` (imports of a model whose `other_forms` the
    engine reads) accepts a file of another size and checksum once its content was read and found
    to be the same network.
    """
    size = path.stat().st_size
    other_forms = other_forms and bool(info.other_forms)
    if info.size is not None and size != info.size and not other_forms:
        raise ChecksumMismatch(f"the file is {size:,} bytes but {info.name} is {info.size:,} bytes")
    check = CONTENT_CHECKS.get(info.kind)
    if info.sha256 is None or other_forms or (check is not None and check.read is not None):
        problem = content_problem(info.kind, path, info.format, info.name)
        if problem:
            raise ChecksumMismatch(f"this is not the {info.name} file: {problem}")
    if other_forms:
        return size, file_sha256(path, cancel)
    digest = file_sha256(path, cancel)
    if info.sha256 is not None and digest != info.sha256.lower():
        raise ChecksumMismatch(
            f"the SHA-256 checksum differs from the published one ({digest[:12]}... instead of "
            f"{info.sha256[:12]}...): the file is damaged or not {info.name}"
        )
    return size, digest


# --- what a model file of each kind must be ------------------------------------------------------

#: (file, format, model name or None) -> why the file cannot be a model of the kind, or None.
ContentCheck = Callable[[Path, str, "str | None"], "str | None"]

_FORMAT_NAMES = {
    "t7": "a Torch7 (.t7) file",
    "pth-port": "a PyTorch checkpoint (.pth.tar)",
    "pt": "a PyTorch checkpoint (.pt, .pth)",
    "h5": "an .h5 file",
    "onnx": "an ONNX (.onnx) file",
}


@dataclass(frozen=True)
class KindCheck:
    """What a file of one model kind must be.

    `formats`: the formats its files come in (the format of a file is `format_from_suffix` of
    its name, or the registry's for a published model). `read`: where the kind has a reader, it
    reads the model itself and decides (it says best what a wrong file is, so it runs even where
    a checksum is published); otherwise the content must be the format (`format_problem`).
    """

    formats: tuple[str, ...]
    read: ContentCheck | None = None

    def __call__(self, path: Path, fmt: str, name: str | None) -> str | None:
        if fmt not in self.formats:
            wanted = " or ".join(_FORMAT_NAMES.get(f, f) for f in self.formats)
            return f"this kind of model is {wanted}, and the file's name makes it {_FORMAT_NAMES.get(fmt, fmt)}"
        return self.read(path, fmt, name) if self.read is not None else format_problem(path, fmt)


def _sam2_checkpoint(path: Path, fmt: str, name: str | None) -> str | None:
    from scubasteve.weights.sam2_checkpoint import checkpoint_problem

    return checkpoint_problem(path, name)


def _isnet_weights(path: Path, fmt: str, name: str | None) -> str | None:
    # ONNX in three precisions or a PyTorch state dict: read the weights against the layout
    from scubasteve.weights.isnet_file import weights_file_problem

    return weights_file_problem(path, published=name is not None)


#: What a file of each model kind must be, checked on every import and download (`KindCheck`).
#: To add a kind: add it to `registry.KINDS` (a new file format also to `registry.FORMATS` and
#: `format_from_suffix`), then one entry here, e.g. ``"isnet": KindCheck(("onnx", "pt"),
#: read=_isnet_weights)``, where the reader returns why the file is not such a model, or None.
#: Without a reader, `format_problem` checks the format's first bytes (teach it a new format).
#: `test_every_model_kind_has_a_content_check` fails until every kind has its entry.
CONTENT_CHECKS: dict[str, KindCheck] = {
    "deepmask": KindCheck(("t7", "pth-port", "pt")),
    "sharpmask": KindCheck(("t7", "pt")),
    "resnet": KindCheck(("t7", "pt")),
    "maskrcnn": KindCheck(("h5",)),
    "sam2": KindCheck(("pt",), read=_sam2_checkpoint),
    "isnet": KindCheck(("onnx", "pt"), read=_isnet_weights),
}


def content_problem(kind: str, path: Path, fmt: str, name: str | None = None) -> str | None:
    """Why `path` cannot be a `kind` model in format `fmt` (`CONTENT_CHECKS`), or None."""
    check = CONTENT_CHECKS.get(kind)
    if check is None:
        return f"files of kind {kind!r} cannot be checked, so they are not installed"
    return check(path, fmt, name)


def format_problem(path: Path, fmt: str) -> str | None:
    """Why the file's content is not format `fmt`, from its first bytes (`sniff_problem`) and, for
    PyTorch checkpoints, their structure (`torch_file_problem`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    problem = sniff_problem(head, fmt)
    if problem is None and fmt in ("pt", "pth-port"):
        problem = torch_file_problem(path)
    return problem


#: What a legacy (pre-zip) PyTorch file pickles first (`torch.serialization.MAGIC_NUMBER`).
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def torch_file_problem(path: Path) -> str | None:
    """Why a file that starts like a PyTorch checkpoint is not one, or None. Nothing is unpickled.

    A zip (torch >= 1.6) must be undamaged (every member's CRC) and hold a `data.pkl` that is a
    whole pickle stream; a legacy file must start with the pickled magic number torch writes.
    """
    import pickletools
    import zipfile

    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head.startswith(b"PK\x03\x04"):
                with zipfile.ZipFile(fh) as archive:
                    names = archive.namelist()
                    pkl = next(
                        (n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), None
                    )
                    if pkl is None:
                        return (
                            "it is a plain zip file, not a PyTorch checkpoint (no data.pkl inside)"
                        )
                    damaged = archive.testzip()
                    if damaged is not None:
                        return f"it is a damaged zip file ({damaged} fails its checksum)"
                    data = archive.read(pkl)
                try:
                    for _ in pickletools.genops(data):
                        pass
                except (ValueError, EOFError) as exc:
                    return f"its data.pkl is not a pickle, so this is no PyTorch checkpoint ({exc})"
                return None
            if head[:1] == b"\x80":
                fh.seek(0)
                try:
                    args = [arg for _, arg, _ in pickletools.genops(fh)]
                except (ValueError, EOFError) as exc:
                    return f"it is not a PyTorch checkpoint (not a pickle: {exc})"
                if _TORCH_LEGACY_MAGIC not in args:
                    return "it is a pickle but not a PyTorch checkpoint (no torch magic number)"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        return f"it is a damaged zip file ({exc})"
    except (OSError, ValueError, EOFError) as exc:
        return f"it is a damaged zip file ({exc})"
    return None


def download(
    name: str,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download a published model into the models folder and return its path.

    Resumes an interrupted download (the `.part` file beside the final one), tries the registry's
    mirrors after its main address, verifies size and SHA-256 where known, and puts the file in
    place atomically. `progress(done, total)` is called from this thread; `cancel` (a
    `CancelToken`) stops it with `Cancelled`, keeping the `.part`. An installed
    model is returned at once unless `force`. Raises `DownloadError` (a `ChecksumMismatch` for a
    wrong file, which is deleted) or `InputError` for a name that cannot be downloaded.
    """
    info = known_model(name)
    if info is None:
        if trained_entry(name) is not None:
            raise InputError(f"{name!r} was trained here and cannot be downloaded")
        raise unknown_name_error(name)
    if not info.downloadable:
        raise InputError(f"{name!r} has no download address; use `scubasteve models import`")
    status = status_of(info)
    if status.installed and not force:
        return status.path
    part = part_path(info)
    hint = (
        f"To install it offline: download {info.url} on a machine with internet, copy it here "
        f"and run: scubasteve models import {name} FILE"
    )
    with _exclusive(name):
        source = _fetch_first_reachable(info, part, progress, cancel, timeout, hint)
        try:
            size, digest = _verify(info, part, cancel)
        except ChecksumMismatch as exc:
            discard_partial(part)
            raise ChecksumMismatch(
                f"the download of {name} is not the expected file and was deleted: {exc}. "
                "Try again later, or fetch it yourself and use `scubasteve models import`"
            ) from exc
        place(part, status.path)
        discard_partial(part)
        _record_install(info, size, digest, source)
    return status.path


def _fetch_first_reachable(
    info: ModelInfo,
    part: Path,
    progress: Progress | None,
    cancel: CancelToken | None,
    timeout: float,
    hint: str,
) -> str:
    """Fetch from the main address, or from the first mirror that answers; return the URL used."""
    problems: list[str] = []
    urls = [u for u in (info.url, *info.mirrors) if u]
    started_from = read_part_meta(part).get("url") if part.is_file() else None
    if started_from in urls:  # continue a partial download from the address it came from
        urls.remove(started_from)
        urls.insert(0, started_from)
    for url in urls:
        try:
            agent = f"scubasteve/{__version__}"
            fetch(url, part, progress=progress, cancel=cancel, timeout=timeout, user_agent=agent)
            return url
        except UnreachableError as exc:
            problems.append(str(exc))
            if part.is_file() and part.stat().st_size > 0:
                # Another address would start from zero; keep the partial file for a retry here.
                raise DownloadError(
                    f"could not download {info.name}: {exc}. The partial download was kept; "
                    f"run the download again later to continue. {hint}"
                ) from exc
        except DownloadError as exc:
            raise DownloadError(f"could not download {info.name}: {exc}") from exc
    raise DownloadError(f"could not download {info.name}: {'; '.join(problems)}. {hint}")


def import_file(
    name: str, path: str | Path, force: bool = False, *, kind: str | None = None
) -> Path:
    """Install a file the user already has (the offline path) and return its installed path.

    For a published model the size, SHA-256 (where known) and file format are checked before the
    file is copied into place atomically. An unknown `name` with a `kind` installs it as a model
    of that kind (e.g. one trained on another machine). Refuses to replace an installed model
    unless `force`. The source file is left where it is.
    """
    src = existing_file(Path(path))
    info = known_model(name)
    if info is None:
        if kind is None:
            existing = trained_entry(name)
            if existing is None:
                raise InputError(
                    f"{name!r} is not a published model; to add your own file give its kind, "
                    f"e.g. `scubasteve models import {name} FILE --kind deepmask`"
                )
            kind = existing.info.kind
        if kind not in KINDS:
            raise InputError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
        problem = content_problem(kind, src, format_from_suffix(src.name))
        if problem:
            raise InputError(
                f"cannot import as a {kind} model: {problem}; nothing was installed", src
            )
        meta = {
            "imported_from": str(src.resolve()),
            "description": f"{kind} imported from {src.name}",
        }
        return register_trained(name, kind, src, meta, replace=force)
    if kind is not None and kind != info.kind:
        raise InputError(f"{name} is a {info.kind} model, not {kind}")
    status = status_of(info)
    if status.path.exists() and status.installed and not force:
        if src.resolve() == status.path.resolve():
            return status.path
        raise InputError(f"{name} is already installed at {status.path}; add --force to replace it")
    tmp, _, _ = copy_to_temp(src, models_dir())
    try:
        size, digest = _verify(info, tmp, other_forms=True)
    except ChecksumMismatch as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot import as {name}: {exc}; nothing was installed", src) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    place(tmp, status.path)
    _record_install(info, size, digest, f"imported from {src.resolve()}")
    return status.path


def register_trained(
    name: str, kind: str, path: str | Path, meta: dict[str, Any], *, replace: bool = True
) -> Path:
    """Install a model trained here under `name`, with a sidecar holding `meta`; return its path.

    The file is copied (the training run keeps its own) as ``<name><suffix>`` into the models
    folder atomically; the sidecar records kind, creation time, size, SHA-256 and `meta` (source
    data, metrics, and for Mask R-CNN `class_names` with "BG" first). It then appears in
    `list_models()` and resolves by name. `replace=False` refuses to overwrite the same name.
    """
    check_name(name)
    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    if known_model(name) is not None:
        raise InputError(f"{name!r} is the name of a published model; choose another name")
    src = existing_file(Path(path))
    suffix = ".pth.tar" if src.name.lower().endswith(".pth.tar") else src.suffix or ".pt"
    filename = f"{name}{suffix}"
    if any(info.filename == filename for info in known_models()):
        raise InputError(f"{name!r} would overwrite a published model's file; choose another name")
    previous = trained_entry(name)
    if previous is not None and not replace:
        raise InputError(f"a model named {name!r} already exists; remove it first or replace it")
    if read_sidecar(name) is not None and previous is None:
        raise InputError(f"{sidecar_path(name)} exists and is not a trained model's record")
    dest = models_dir() / filename
    if src.resolve() == dest.resolve():
        size, digest = src.stat().st_size, file_sha256(src)
    else:
        tmp, size, digest = copy_to_temp(src, models_dir())
        place(tmp, dest)
    if previous is not None and previous.info.filename != filename:
        (models_dir() / previous.info.filename).unlink(missing_ok=True)
    record = {"name": name, "trained": True, "kind": kind, "file": filename}
    record.update(format=format_from_suffix(filename), size=size, sha256=digest)
    write_sidecar(name, {**record, "created": now_iso(), "meta": meta})
    return dest


def _record_install(info: ModelInfo, size: int, digest: str, source: str) -> None:
    # The digest is recorded even where none is published, so a later damage can be told apart.
    record = {"name": info.name, "kind": info.kind, "file": info.filename, "format": info.format}
    write_sidecar(info.name, {**record, "size": size, "sha256": digest, "source": source,
                              "installed": now_iso()})  # fmt: skip
