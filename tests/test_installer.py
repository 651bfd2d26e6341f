"""The installer build: its helpers, its inputs, and (slow) a real frozen build that passes --self-test."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _load_build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "build_installer", REPO / "scripts" / "build_installer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


build_installer = _load_build_script()


def _write(path: Path, nbytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * nbytes)


def test_bundle_size_is_grouped_by_package_inside_internal(tmp_path: Path) -> None:
    _write(tmp_path / "ScubaSteve", 10)
    _write(tmp_path / "_internal" / "torch" / "lib" / "libtorch_cpu.so", 1000)
    _write(tmp_path / "_internal" / "torch" / "_C.so", 50)
    _write(tmp_path / "_internal" / "tensorflow" / "python" / "x.so", 300)
    _write(tmp_path / "_internal" / "nvidia" / "cudnn" / "lib" / "libcudnn.so.9", 700)
    size = build_installer.measure_bundle(tmp_path)
    assert size.total == 2060 and size.files == 5
    groups = dict(size.groups)
    assert groups["torch/lib"] == 1000 and groups["torch/_C.so"] == 50
    assert groups["nvidia/cudnn"] == 700 and groups["tensorflow"] == 300
    assert size.largest[0] == ("_internal/torch/lib/libtorch_cpu.so", 1000)


def test_bundle_size_counts_symlinks_once(tmp_path: Path) -> None:
    _write(tmp_path / "_internal" / "lib.so", 400)
    try:
        (tmp_path / "_internal" / "alias.so").symlink_to("lib.so")
    except OSError:
        pytest.skip("symlinks not permitted here")
    size = build_installer.measure_bundle(tmp_path)
    assert 400 <= size.total < 800


def test_missing_bundle_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ScubaSteve"):
        build_installer.find_bundle(tmp_path)


def test_icons_exist_for_every_platform() -> None:
    icons = REPO / "resources" / "icons"
    with Image.open(icons / "scubasteve.png") as png:
        assert png.size[0] == png.size[1] >= 256
    with Image.open(icons / "scubasteve.ico") as ico:
        assert (256, 256) in ico.info["sizes"] and (16, 16) in ico.info["sizes"]
    with Image.open(icons / "scubasteve.icns") as icns:
        assert icns.format == "ICNS"


def test_packaging_folder_does_not_hide_the_packaging_library() -> None:
    # packaging/ (our PyInstaller hooks) has no __init__.py, so the PyPI library of the same name,
    # which PyInstaller itself imports, still wins when Python runs from the repository root.
    assert not (REPO / "packaging" / "__init__.py").exists()
    code = "import packaging.version, packaging; print(packaging.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(found).resolve().parent != (REPO / "packaging").resolve()


def _spec_list(name: str) -> list[str]:
    """A module-level list of string literals in build_installer.spec (read, not run)."""
    import ast

    tree = ast.parse((REPO / "build_installer.spec").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError(f"no {name} in build_installer.spec")


def test_the_bundle_keeps_onnx_for_isnet_weights_and_leaves_onnx_runtime_out() -> None:
    excluded = _spec_list("EXCLUDES")
    assert "onnx" not in excluded, "the IS-Net engine reads the published ONNX weights with onnx"
    assert "onnxruntime" in excluded
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    dependencies = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert '"onnx>=' in dependencies, "onnx must be a main dependency, or the bundle may lack it"


def test_no_model_weights_are_bundled() -> None:
    # The spec bundles the resources folder as data: no weights file may hide there.
    weight_suffixes = {".onnx", ".pt", ".pth", ".t7", ".h5", ".tar", ".safetensors"}
    found = [p for p in (REPO / "resources").rglob("*") if p.suffix.lower() in weight_suffixes]
    assert found == []
    assert all(p.stat().st_size < 5_000_000 for p in (REPO / "resources").rglob("*") if p.is_file())


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.timeout(3900)  # the build itself may take up to 3600 s (below)
@pytest.mark.skipif(
    os.environ.get("SCUBASTEVE_SKIP_INSTALLER_BUILD") == "1",
    reason="SCUBASTEVE_SKIP_INSTALLER_BUILD=1: the build runs as its own CI step",
)
@pytest.mark.skipif(
    _missing("scubasteve.gui.app") or _missing("scubasteve.inference.engines"),
    reason="the GUI or the classic engine is not in this checkout yet",
)
def test_frozen_app_builds_and_passes_its_self_test(tmp_path: Path) -> None:
    pytest.importorskip("PyInstaller")
    summary_path = tmp_path / "summary.json"
    dist = tmp_path / "dist"
    try:
        command = [
            sys.executable, str(REPO / "scripts" / "build_installer.py"),
            "--dist", str(dist), "--work", str(tmp_path / "work"), "--summary", str(summary_path),
        ]  # fmt: skip
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        log = result.stdout[-6000:] + result.stderr[-6000:]
        assert result.returncode == 0, log
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        assert summary["self_test"]["status"] == 0, summary["self_test"]["report"]
        assert "self-test passed" in summary["self_test"]["report"]
        assert summary["bundle_size"]["total"] > 0
        print(f"build {summary['build_seconds']} s, bundle {summary['bundle_size']['total']} bytes")
    finally:
        shutil.rmtree(dist, ignore_errors=True)
