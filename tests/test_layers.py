"""Architecture rules: lower layers never import Qt, and start-up never loads torch or TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run([*command, "--no-cache"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


LIGHT_MODULES = [
    "scubasteve.cli",
    "scubasteve.core.annotation",
    "scubasteve.core.geometry",
    "scubasteve.io.labelme",
    "scubasteve.io.coco",
    "scubasteve.inference.base",
    "scubasteve.inference.device",
]


def test_cli_and_core_modules_do_not_load_heavy_libraries() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {LIGHT_MODULES!r}: importlib.import_module(m)\n"
        "from scubasteve.cli import build_parser; build_parser()\n"
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'pixellib', 'PySide6', 'tf_keras') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == ""


def test_the_parser_loads_only_the_cli_modules() -> None:
    """Each cli/<command>.py imports its workers inside the handlers: `--help` loads none of them."""
    code = (
        "import sys\n"
        "from scubasteve.cli import build_parser; build_parser()\n"
        "loaded = sorted(m for m in sys.modules if m == 'numpy' or m.startswith('scubasteve.')"
        " and not m.startswith('scubasteve.cli'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == ""


def test_the_desktop_app_does_not_load_ray() -> None:
    """Ray (the optional extra `scale`) is for `annotate --ray` only: the window never imports it."""
    code = (
        "import sys\n"
        "from scubasteve.cli import build_parser; build_parser()\n"
        "import scubasteve.gui.app, scubasteve.gui.main_window, scubasteve.cli.annotate\n"
        "import scubasteve.inference.preannotation\n"
        "print(','.join(m for m in ('ray', 'ray.data') if m in sys.modules))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True, env=env
    )
    assert result.stdout.strip() == ""
