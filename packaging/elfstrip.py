"""Strip symbol tables from the Linux libraries of a PyInstaller build, safely.

The torch and TensorFlow libraries ship with full symbol tables (about 530 MB across the bundle
with the CUDA torch wheel). PyInstaller's own `strip=True` strips every library, and that breaks
libraries that auditwheel repaired with patchelf (numpy's and scipy's OpenBLAS in `*.libs/`
folders fail to load: "ELF load command address/offset not page-aligned"). So: strip a copy of
each library that has a symbol table, skip the `*.libs/` folders, check the copy's load segments
are still page-aligned, and keep the original wherever anything looks wrong.

Used by build_installer.spec on Linux: `binaries = strip_binaries(a.binaries, workpath/"stripped")`.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

_ELF64_LE = b"\x7fELF\x02\x01"
_PT_LOAD = 1
_SHT_SYMTAB = 2
#: Libraries with smaller symbol tables than this are not worth a strip run.
MIN_SYMBOLS_BYTES = 64 * 1024


def _header(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    return head if head.startswith(_ELF64_LE) and len(head) == 64 else None


def symbol_table_bytes(path: Path) -> int:
    """Bytes of `.symtab` and its string table in a 64-bit little-endian ELF file (0 otherwise)."""
    head = _header(path)
    if head is None:
        return 0
    (shoff,) = struct.unpack_from("<Q", head, 40)
    shentsize, shnum = struct.unpack_from("<HH", head, 58)
    if not shoff or not shnum:
        return 0
    with open(path, "rb") as handle:
        handle.seek(shoff)
        table = handle.read(shentsize * shnum)
    sections = [struct.unpack_from("<IIQQQQII", table, i * shentsize) for i in range(shnum)]
    total = 0
    for _name, kind, _flags, _addr, _offset, size, link, _info in sections:
        if kind == _SHT_SYMTAB:
            total += size + (sections[link][5] if link < len(sections) else 0)
    return total


def loads_page_aligned(path: Path, page: int | None = None) -> bool:
    """Whether every PT_LOAD segment keeps `vaddr - offset` a multiple of the page size."""
    head = _header(path)
    if head is None:
        return False
    page = page or os.sysconf("SC_PAGE_SIZE")
    (phoff,) = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    with open(path, "rb") as handle:
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    for i in range(phnum):
        kind, _flags, offset, vaddr = struct.unpack_from("<IIQQ", table, i * phentsize)
        if kind == _PT_LOAD and (vaddr - offset) % page:
            return False
    return True


def _strip_copy(src: Path, out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = out.with_name(out.name + ".src")
    key = f"{src.resolve()}|{src.stat().st_size}|{src.stat().st_mtime_ns}"
    if out.is_file() and stamp.is_file() and stamp.read_text() == key:
        return True
    result = subprocess.run(
        ["strip", "--strip-unneeded", "-o", str(out), str(src)], capture_output=True, text=True
    )
    if result.returncode != 0 or not loads_page_aligned(out):
        out.unlink(missing_ok=True)
        return False
    stamp.write_text(key)
    return True


def strip_binaries(binaries: list, workdir: Path, log=print) -> list:  # type: ignore[type-arg]
    """The TOC with stripped copies in place of libraries that have symbol tables.

    `binaries`: PyInstaller TOC entries (dest_name, src_name, typecode). Entries that are not
    ELF files, have small symbol tables, live in an auditwheel `*.libs` folder, or whose stripped
    copy fails the checks, are returned unchanged.
    """
    if shutil.which("strip") is None:
        log("elfstrip: no `strip` command; libraries are collected as they are")
        return list(binaries)
    result, saved, count = [], 0, 0
    for dest, src, typecode in binaries:
        source = Path(src)
        symbols = symbol_table_bytes(source) if typecode in ("BINARY", "EXTENSION") else 0
        in_libs = any(part.endswith(".libs") for part in source.parent.parts)
        if symbols < MIN_SYMBOLS_BYTES or in_libs or not loads_page_aligned(source):
            result.append((dest, src, typecode))
            continue
        out = workdir / dest
        if _strip_copy(source, out):
            saved += source.stat().st_size - out.stat().st_size
            count += 1
            result.append((dest, str(out), typecode))
        else:
            log(f"elfstrip: kept {dest} unstripped (strip failed or broke its load segments)")
            result.append((dest, src, typecode))
    log(f"elfstrip: stripped {count} libraries, {saved / 2**20:.0f} MiB smaller")
    return result
