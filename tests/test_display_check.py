"""The self-test's display check, cv2's Qt plugin redirect and TensorFlow's native log filter."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("PySide6")

from scubasteve.gui.qtcheck import (
    debian_package,
    display_problem,
    missing_libraries,
    undo_cv2_plugin_redirect,
)


def test_cv2_plugin_paths_are_removed_and_others_kept() -> None:
    env = {
        "QT_QPA_PLATFORM_PLUGIN_PATH": "/venv/lib/python3.11/site-packages/cv2/qt/plugins",
        "QT_QPA_FONTDIR": "/venv/lib/python3.11/site-packages/cv2/qt/fonts",
        "QT_PLUGIN_PATH": "/opt/my-qt/plugins",
    }
    assert undo_cv2_plugin_redirect(env) == ["QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"]
    assert env == {"QT_PLUGIN_PATH": "/opt/my-qt/plugins"}


def test_importing_cv2_then_the_window_module_leaves_qt_its_own_plugins() -> None:
    code = (
        "import os, cv2\n"
        "from scubasteve.gui.qtcheck import undo_cv2_plugin_redirect\n"
        "undo_cv2_plugin_redirect()\n"
        "print(os.environ.get('QT_QPA_PLATFORM_PLUGIN_PATH', 'unset'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "unset"


def test_missing_libraries_are_named_with_their_packages() -> None:
    ldd = (
        "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6\n"
    )
    qt = "Cannot load library libqxcb.so: (libxcb-cursor.so.0: cannot open shared object file)"
    assert missing_libraries(ldd + qt) == [
        "libxcb-cursor.so.0",
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
    ]
    assert [debian_package(n) for n in missing_libraries(ldd + qt)] == [
        "libxcb-cursor0",
        "libxcb-icccm4",
        "libxcb-keysyms1",
    ]
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libGL.so.1") == "libgl1"


@pytest.mark.slow
def test_display_check_reports_a_display_that_cannot_be_reached(monkeypatch) -> None:
    monkeypatch.setenv("DISPLAY", ":9731")  # nothing listens there
    command = [sys.executable, "-m", "scubasteve", "--check-display"]
    name, problem = display_problem(command, None)
    assert name == "xcb"
    assert problem is not None
    # Where Qt's X11 libraries are installed Qt names the display; elsewhere we name the libraries.
    assert "could not connect to display :9731" in problem or "missing system libraries" in problem


def test_display_check_without_a_display_says_so(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_problem(["false"], None) == ("none", None)
    name, problem = display_problem([sys.executable, "-c", "raise SystemExit(0)"], "offscreen")
    assert (name, problem) == ("offscreen", None)


def test_tensorflow_native_lines_are_dropped_unless_verbose() -> None:
    code = (
        "import os, sys\n"
        "os.environ['TF_CPP_MIN_LOG_LEVEL'] = sys.argv[1]\n"
        "from scubasteve.inference.maskrcnn.tf_runtime import native_log_filter\n"
        "with native_log_filter():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called\\n')\n"
        "    os.write(2, b'I0000 00:00:1.2 1 cudart_stub.cc:31] Could not find cuda drivers\\n')\n"
        "    os.write(2, b'E0000 00:00:1.3 1 cuda_platform.cc:52] failed call to cuInit\\n')\n"
        "    print('a real warning', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    quiet = subprocess.run([sys.executable, "-c", code, "3"], capture_output=True, text=True)
    assert quiet.stderr.splitlines() == ["a real warning", "after"]
    verbose = subprocess.run([sys.executable, "-c", code, "0"], capture_output=True, text=True)
    assert "Could not find cuda drivers" in verbose.stderr
