"""Checks of the Qt installation: PySide6 builds that lose references, and the display platform.

PySide6 6.12.0 on Python 3.11 (where None and True are not yet immortal) drops one reference to
`None` on every call of a void Qt method from Python and one to `True` on every signal emit. After
some tens of thousands of calls (minutes of annotating) the count reaches zero and the interpreter
aborts with "none_dealloc" or "bool_dealloc". pyproject.toml excludes those versions; this check
catches an environment that has one anyway, so the window can say so instead of dying later.

The display check (`display_problem`, used by `--self-test`) opens a QApplication on the real
display in a child process and names the missing system libraries when the platform plugin cannot
load; `undo_cv2_plugin_redirect` keeps opencv-python from pointing Qt at its own plugins (ADR 0507).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal(int)


def reference_leak() -> str | None:
    """A message when this PySide6 loses references to None or True; None when it is sound."""
    probe = _Probe()
    probe.ping.connect(lambda _v: None)
    trials = 64
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(trials):
        probe.setObjectName("probe")  # a void method
        probe.ping.emit(1)
    lost_none = none_before - sys.getrefcount(None)
    lost_true = true_before - sys.getrefcount(True)
    if lost_none < trials // 2 and lost_true < trials // 2:
        return None
    return (
        f"PySide6 {PYSIDE_VERSION} on Python {sys.version_info.major}.{sys.version_info.minor} loses "
        "object references and will crash after a while; install another version, e.g. "
        "pip install 'PySide6-Essentials>=6.6,<6.12'"
    )


# --- the platform plugin: cv2's redirect and the real display --------------------------------------

#: Variables opencv-python (the non-headless wheel, which pixellib and imgaug require) sets on import
#: on Linux, pointing Qt at the Qt 5 plugins and fonts bundled inside cv2.
CV2_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "QT_PLUGIN_PATH")


def undo_cv2_plugin_redirect(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove Qt plugin/font paths that point into a `cv2/qt` folder; returns the variables removed.

    Must run before the QApplication is made. Without it Qt 6 looks for its platform plugin among
    cv2's Qt 5 plugins, and a missing system library is reported as a plugin missing in that folder.
    """
    env = os.environ if environ is None else environ
    removed = []
    for name in CV2_QT_VARIABLES:
        parts = Path(env.get(name, "")).parts
        if any(a == "cv2" and b == "qt" for a, b in itertools.pairwise(parts)):
            del env[name]
            removed.append(name)
    return removed


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that usually ships a library: libxcb-icccm.so.4 -> libxcb-icccm4."""
    stem, _, version = soname.partition(".so.")
    version = version.split(".")[0]
    stem = stem.lower()
    if not version:
        return stem
    return f"{stem}-{version}" if stem[-1:].isdigit() else f"{stem}{version}"


def missing_libraries(text: str) -> list[str]:
    """Library file names reported missing in `ldd` output or Qt's plugin-loading messages."""
    found = re.findall(
        r"(lib[\w.+-]+\.so(?:\.\d+)*)(?: => not found|: cannot open shared object)", text
    )
    return sorted(set(found))


def _platform_plugin(platform_name: str) -> Path | None:
    from PySide6.QtCore import QLibraryInfo

    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    matches = sorted(folder.glob(f"*q{platform_name}.*"))
    return matches[0] if matches else None


def missing_display(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Why no window can open here (Linux without DISPLAY or WAYLAND_DISPLAY), else None.

    Without a display Qt only says it could not load the "xcb" plugin and suggests libxcb-cursor0,
    which sends people after a library they already have."""
    env = os.environ if environ is None else environ
    platform_name = env.get("QT_QPA_PLATFORM", "").split(":")[0]
    if not sys.platform.startswith("linux") or platform_name not in ("", "xcb", "wayland"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display: DISPLAY and WAYLAND_DISPLAY are unset, so the window cannot open. Start it "
        "from a desktop session (or over ssh -X); the command-line tools (scubasteve --help) and "
        "scubasteve --self-test work without one."
    )


def display_problem(
    command: list[str], qt_platform: str | None = None, timeout: float = 60.0
) -> tuple[str, str | None]:
    """Open and close a Qt application on the display the window would use, in a child process.

    A platform plugin that cannot load aborts the process, so the check runs `command` (which must
    make a QApplication and exit 0) with QT_QPA_PLATFORM = `qt_platform` (None: unset). Returns (platform, None) when it works, else (platform, why):
    Qt's own message, and the missing system libraries with the packages that provide them.
    """
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)
    if qt_platform:
        env["QT_QPA_PLATFORM"] = qt_platform
    undo_cv2_plugin_redirect(env)
    name = env.get("QT_QPA_PLATFORM", "").split(":")[0]
    if not name and sys.platform.startswith("linux"):
        if missing_display(env):
            return "none", None
        name = "xcb" if env.get("DISPLAY") else "wayland"
    env["QT_DEBUG_PLUGINS"] = "1"
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return (
            name or "default",
            f"opening a window on the display did not finish in {timeout:.0f} s",
        )
    if run.returncode == 0:
        return name or "default", None
    text = run.stderr + run.stdout
    plugin = _platform_plugin(name) if name else None
    if plugin is not None and shutil.which("ldd"):
        ldd = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True)
        text += ldd.stdout
    libraries = missing_libraries(text)
    # Qt >= 6.5 always adds a hint about xcb-cursor; ldd says whether it is really missing.
    qt_lines = [
        ln.strip()
        for ln in run.stderr.splitlines()
        if re.match(r"qt\.qpa\.(?!plugin: From)", ln) or "failed to start" in ln
    ]
    why = "; ".join(qt_lines[-3:]) or f"exit status {run.returncode}"
    if libraries:
        packages = ", ".join(debian_package(lib) for lib in libraries)
        why += f"; missing system libraries: {', '.join(libraries)} (Debian/Ubuntu: apt install {packages})"
    return name or "default", why
