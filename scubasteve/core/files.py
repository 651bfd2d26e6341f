"""Files that may not be what their names say, and names that cannot become files.

Only regular files are read: an entry named `x.json` that is a FIFO would block a reader forever, and
a link to a device such as /dev/zero would be read until memory runs out. Sizes are checked before
reading. Names that come from files or the command line are checked before they are used: text
that is not valid Unicode cannot be written as UTF-8 (a lone surrogate: a JSON escape such as
"\\ud800", or a byte of a file name that is not UTF-8, which Python keeps as a surrogate), and a
name longer than a file system holds cannot be created (docs/hostile-inputs.md).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath
from typing import BinaryIO

from scubasteve.core.errors import InputError

#: The longest file name (one path component) that common file systems hold, in bytes: ext4, XFS,
#: btrfs, APFS (and NTFS, in UTF-16 units). Longer names fail with "File name too long".
NAME_MAX_BYTES = 255
#: The longest path Linux passes to the kernel, in bytes.
PATH_MAX_BYTES = 4096


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular_file(path: Path, what: str = "file") -> os.stat_result:
    """`InputError` unless `path` (links followed) is an existing regular file; its stat result."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise InputError(f"{what} not found", path) from exc
    except PermissionError as exc:
        raise InputError(f"cannot read the {what}: permission denied", path) from exc
    except (OSError, ValueError) as exc:  # a name too long, a NUL or an unencodable character
        raise InputError(f"cannot read the {what}: {_reason(exc)}", path) from exc
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"is {_kind(info.st_mode)}, not a regular {what}; not read", path)
    return info


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def read_regular_bytes(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of the regular file `path`, refused with `InputError` when it is not a regular
    file (checked again on the open file, so a swapped-in FIFO cannot block) or larger than
    `max_bytes`."""
    check_regular_file(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError as exc:
        raise InputError(f"cannot read the {what}: permission denied", path) from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the {what}: {_reason(exc)}", path) from exc
    handle: BinaryIO = os.fdopen(fd, "rb")
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"is {_kind(info.st_mode)}, not a regular {what}; not read", path)
        if info.st_size > max_bytes:
            raise InputError(
                f"the {what} is {info.st_size:,} bytes; at most {max_bytes:,} are read", path
            )
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise InputError(f"cannot read the {what}: {_reason(exc)}", path) from exc
    if len(data) > max_bytes:  # it grew while being read
        raise InputError(f"the {what} is more than {max_bytes:,} bytes; not read", path)
    return data


def text_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8, or None when it can.

    The only such strings hold lone surrogates: a byte of a file name that is not UTF-8 (Latin-1
    from a Windows zip, kept by Python as U+DC80..U+DCFF), or a JSON escape for half of a UTF-16
    pair, which is no character.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        if 0xDC80 <= code <= 0xDCFF:
            return (
                f"{text!a} contains the byte 0x{code - 0xDC00:02X}, which is not UTF-8 (a name "
                "in Latin-1 or another legacy encoding, as Windows zip files hold): rename it"
            )
        return (
            f"{text!a} contains \\u{code:04x}, half of a UTF-16 surrogate pair, which is not a "
            "character (an escape in a JSON file?)"
        )
    return None


def printable(text: str) -> str:
    """`text` safe to show anywhere (a window, a UTF-8 terminal): a byte of a name that is not
    UTF-8 appears as ``\\xe9``, half of a surrogate pair as ``\\ud800``."""
    if text_problem(text) is None:
        return text
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            shown.append(f"\\u{code:04x}")
        else:
            shown.append(char)
    return "".join(shown)


def name_problem(path: PurePath | str) -> str | None:
    """Why no file can be created at `path`, judged from the name alone, or None.

    A character the file system's encoding cannot hold (a lone surrogate that is no escaped
    byte), a NUL, a component longer than `NAME_MAX_BYTES` or a path longer than
    `PATH_MAX_BYTES`. A name of bytes that are not UTF-8 (read from the disk) can be created
    again; `text_problem` says whether it can be written inside a JSON file.
    """
    text = os.fspath(path)
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:
        return text_problem(text)
    if b"\0" in encoded:
        return f"{text!a} contains a NUL character, which no file name holds"
    for part in PurePath(text).parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX_BYTES:
            shown = part if len(part) <= 40 else f"{part[:20]}...{part[-16:]}"
            return (
                f"the name {shown!r} is {size} bytes long; file systems hold at most "
                f"{NAME_MAX_BYTES} bytes per name"
            )
    if len(encoded) >= PATH_MAX_BYTES:
        return f"the path is longer than the {PATH_MAX_BYTES} bytes a path may have"
    return None


def shorten_name(name: str, max_bytes: int) -> str:
    """`name` cut to at most `max_bytes` in the file system's encoding, on a character boundary."""
    encoded = os.fsencode(name)
    if len(encoded) <= max_bytes:
        return name
    cut = encoded[:max_bytes]
    while cut and (cut[-1] & 0xC0) == 0x80:  # inside a UTF-8 sequence: back to its start
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:
        cut = cut[:-1]
    return os.fsdecode(cut)
