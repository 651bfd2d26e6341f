"""Atomic file writes: a file is either its old self or completely the new one, never truncated.

The program's one implementation of the pattern (a temporary file in the same folder, fsync,
`os.replace`): in `core` so that the settings can use it too. JSON is read by
`scubasteve.io.json_files`; the weights store builds its verified installs from `temp_file_beside`
and `replace_with`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from scubasteve.core.errors import InputError, os_error_problem
from scubasteve.core.files import NAME_MAX_BYTES, name_problem, shorten_name, text_problem

#: A temporary file of ours older than this was left by a killed process (a write takes seconds).
STALE_TEMPORARY_SECONDS = 15 * 60
#: Our temporary files are ``.<name>.<8 random characters>.scubasteve.tmp``: the suffix marks them
#: as ours, so the clean-up never touches a user's own ``.something.tmp``.
TEMP_SUFFIX = ".scubasteve.tmp"
_STALE_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")
#: Bytes of the final name kept in a temporary's name: "." + name + "." + 8 + suffix <= 255.
_TEMP_NAME_BYTES = NAME_MAX_BYTES - len(TEMP_SUFFIX) - 10
_cleaned: set[Path] = set()


class AlreadyExists(InputError):
    """A write that must not replace a file found one in its place (`replace=False`)."""


def clean_stale_temporaries(folder: Path) -> list[Path]:
    """Remove our temporary files (`TEMP_SUFFIX`) older than `STALE_TEMPORARY_SECONDS`.

    They are what a process killed in the middle of `atomic_write_bytes` leaves. Done once per
    folder and process (the first write there); returns the files removed.
    """
    folder = Path(folder)
    if folder in _cleaned:
        return []
    _cleaned.add(folder)
    removed: list[Path] = []
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _STALE_NAME.match(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def temp_file_beside(folder: Path, name: str) -> tuple[IO[bytes], Path]:
    """A new hidden temporary file ``.<name>.XXXXXXXX.scubasteve.tmp`` in `folder`, open for
    writing bytes (`name` shortened so that the temporary's name fits in 255 bytes).

    Raises the `OSError` of creating it (the caller words it). The caller writes, fsyncs and closes
    it, then `replace_with`s it, or unlinks it on failure.
    """
    prefix = f".{shorten_name(name, _TEMP_NAME_BYTES)}."
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=folder)
    return os.fdopen(fd, "wb"), Path(tmp_name)


def replace_with(tmp: Path, path: Path, mode: int | None = None) -> None:
    """Move the finished temporary file `tmp` over `path` (same folder), durably.

    `mode`: the new file's permissions; None keeps those of the file replaced, and a new file gets
    0o666 less the umask (mkstemp alone would make it private).
    """
    if mode is None and path.exists():
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode & 0o7777
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then replace.

    The old file (if any) stays intact when anything fails: a read-only folder, a full disk, a kill.
    `replace=False` never replaces a file: the finished temporary is linked into place, which fails
    with `AlreadyExists` if a file appeared there meanwhile (another process writing the same
    folder). Errors are raised as `InputError` naming the file and the cause.
    """
    path = Path(path)
    problem = name_problem(path)
    if problem:
        raise InputError(f"cannot be written: {problem}", path)
    folder = path.parent
    clean_stale_temporaries(folder)
    try:
        fh, tmp = temp_file_beside(folder, path.name)
    except (FileNotFoundError, PermissionError) as exc:  # the folder's fault
        problem = os_error_problem(exc, "cannot write here", "folder")
        if isinstance(exc, PermissionError):
            problem += " (is the folder read-only?)"
        raise InputError(problem, folder) from exc
    except OSError as exc:  # e.g. a name the file system cannot hold: the file's
        problem = os_error_problem(exc, "cannot create a temporary file beside it")
        raise InputError(problem, path) from exc
    try:
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            replace_with(tmp, path)
        else:
            _place_new(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        problem = os_error_problem(exc, "could not write")
        raise InputError(f"{problem}; the previous file was kept unchanged", path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _place_new(tmp: Path, path: Path) -> None:
    """Put the finished `tmp` at `path` only if nothing is there (atomically; never replaces)."""
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~umask)
    try:
        os.link(tmp, path)  # fails if `path` exists, whoever made it
    except FileExistsError as exc:
        raise AlreadyExists("exists already; kept (use --overwrite to replace it)", path) from exc
    except OSError as exc:
        if exc.errno not in (
            errno.EPERM,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EXDEV,
            errno.EMLINK,
        ):
            raise
        # No hard links here (FAT, some network shares): claim the name, then replace our claim.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError as exists:
            raise AlreadyExists(
                "exists already; kept (use --overwrite to replace it)", path
            ) from exists
        os.replace(tmp, path)
    else:
        tmp.unlink()
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # Make the rename itself durable where the platform allows it (not on Windows).
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str, *, replace: bool = True) -> None:
    """`text` as UTF-8; `InputError` when it holds what UTF-8 cannot (`text_problem`)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        problem = text_problem(text[max(0, exc.start - 40) : exc.start + 40]) or str(exc)
        raise InputError(f"cannot be written as UTF-8 text: {problem}", path) from exc
    atomic_write_bytes(path, data, replace=replace)


def atomic_write_json(
    path: Path, data: Any, indent: int | None = 2, *, replace: bool = True
) -> None:
    """`data` as JSON (UTF-8). A string that holds a lone surrogate (a JSON escape for half a
    UTF-16 pair, read from a file, or a byte of a file name that is not UTF-8) cannot be UTF-8:
    the file is then written with ASCII escapes, which keep that string exactly as it was read."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=indent, ensure_ascii=True, allow_nan=False) + "\n"
        encoded = text.encode("ascii")
    atomic_write_bytes(path, encoded, replace=replace)
