"""packaging/elfstrip.py: which Linux libraries the installer build strips, and that it checks them."""

from __future__ import annotations

import importlib.util
import shutil
import struct
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("elfstrip", REPO / "packaging" / "elfstrip.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


elfstrip = _load()


def _fake_elf(
    path: Path, loads: list[tuple[int, int]], sections: list[tuple[int, int, int]] = ()
) -> Path:
    """A minimal 64-bit ELF: program headers (offset, vaddr) and sections (type, size, link)."""
    phoff, phentsize, shentsize = 64, 56, 64
    shoff = phoff + phentsize * len(loads)
    head = bytearray(64)
    head[:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<QQ", head, 32, phoff, shoff if sections else 0)
    struct.pack_into("<HHHH", head, 54, phentsize, len(loads), shentsize, len(sections))
    body = bytearray()
    for offset, vaddr in loads:
        body += struct.pack("<IIQQQQQQ", 1, 5, offset, vaddr, vaddr, 0, 0, 4096)
    for kind, size, link in sections:
        body += struct.pack("<IIQQQQIIQQ", 0, kind, 0, 0, 0, size, link, 0, 1, 0)
    path.write_bytes(bytes(head + body))
    return path


def test_misaligned_load_segment_is_detected(tmp_path: Path) -> None:
    good = _fake_elf(tmp_path / "good.so", [(0, 0), (0x1234, 0x201234)])
    bad = _fake_elf(tmp_path / "bad.so", [(0, 0), (0x1234, 0x200000)])
    assert elfstrip.loads_page_aligned(good, page=4096)
    assert not elfstrip.loads_page_aligned(bad, page=4096)


def test_symbol_table_size_counts_symtab_and_its_strings(tmp_path: Path) -> None:
    # sections: 0 null, 1 .dynstr (not counted), 2 .symtab -> 3 .strtab
    lib = _fake_elf(tmp_path / "lib.so", [(0, 0)], [(0, 0, 0), (3, 70, 0), (2, 100, 3), (3, 50, 0)])
    assert elfstrip.symbol_table_bytes(lib) == 150
    text = tmp_path / "not_elf.py"
    text.write_text("print('hi')\n")
    assert elfstrip.symbol_table_bytes(text) == 0


def test_auditwheel_libraries_and_data_are_left_alone(tmp_path: Path) -> None:
    big = [(0, 0, 0), (2, 10**6, 2), (3, 10**6, 0)]
    libs_dir = tmp_path / "numpy.libs"
    libs_dir.mkdir()
    in_libs = _fake_elf(libs_dir / "libopenblas.so", [(0, 0)], big)
    data = tmp_path / "notes.txt"
    data.write_text("x")
    toc = [("numpy.libs/libopenblas.so", str(in_libs), "BINARY"), ("notes.txt", str(data), "DATA")]
    assert elfstrip.strip_binaries(toc, tmp_path / "out", log=lambda _m: None) == toc


def _library_with_symbols() -> Path | None:
    """A small real library with a symbol table from this Python installation, if there is one."""
    for folder in {Path(p) for p in sys.path if p.endswith("site-packages")}:
        for lib in sorted(folder.glob("*/*.so"))[:400]:
            small = lib.stat().st_size < 20 * 2**20 and ".libs" not in lib.parent.name
            if small and elfstrip.symbol_table_bytes(lib) >= elfstrip.MIN_SYMBOLS_BYTES:
                return lib
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF libraries are Linux's")
def test_real_library_is_stripped_into_a_smaller_loadable_copy(tmp_path: Path) -> None:
    if shutil.which("strip") is None:
        pytest.skip("no strip command")
    lib = _library_with_symbols()
    if lib is None:
        pytest.skip("no library with a symbol table in this environment")
    [(_dest, src, kind)] = elfstrip.strip_binaries(
        [(f"pkg/{lib.name}", str(lib), "EXTENSION")], tmp_path, log=lambda _m: None
    )
    out = Path(src)
    assert out == tmp_path / "pkg" / lib.name and kind == "EXTENSION"
    assert out.stat().st_size < lib.stat().st_size
    assert elfstrip.symbol_table_bytes(out) == 0
    assert elfstrip.loads_page_aligned(out)
