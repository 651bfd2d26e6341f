"""`scubasteve bench startup`: time of `scubasteve --help`, and of `scubasteve` until the window shows.

Each measurement is a fresh process, timed from just before it is started. The window is timed until
its first show event (the offscreen platform unless a display is set) and, separately, until the
proposal engine is ready (it loads in the background after the window is visible).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys, time
import scubasteve.gui.app as app
def shown(window):
    print('SHOWN', repr(time.time()), flush=True)
    def ready(info):
        print('ENGINE', repr(time.time()), info.name, info.device, flush=True)
        window.close()
    window.engine.engine_ready.connect(ready)
    def failed(message):
        print('ENGINE_ERROR', message, flush=True)
        if 'No engine is available' in message:
            window.close()
    window.engine.engine_error.connect(failed)
app.on_first_shown = shown
from scubasteve.cli import main
sys.exit(main([]))
"""


def _env(tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # A fresh settings folder: no last folder is reopened, the default engine is used.
    env["SCUBASTEVE_CONFIG_DIR"] = os.path.join(tmp, "config")
    return env


def time_help(env: dict[str, str]) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "scubasteve", "--help"], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.time() - t0


def time_window(env: dict[str, str]) -> tuple[float, float | None, str]:
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600
    ).stdout
    shown = engine = None
    name = ""
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "SHOWN":
            shown = float(parts[1]) - t0
        elif parts and parts[0] == "ENGINE":
            engine = float(parts[1]) - t0
            name = " ".join(parts[2:])
        elif parts and parts[0] == "ENGINE_ERROR" and engine is None:
            name = line
    if shown is None:
        raise RuntimeError(f"the window did not show:\n{out}")
    return shown, engine, name


def run(args: argparse.Namespace) -> int:
    repeat = max(1, int(args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(tmp)
        helps = [time_help(env) for _ in range(repeat)]
        windows = [time_window(env) for _ in range(repeat)]
    shown = [w[0] for w in windows]
    engine = [w[1] for w in windows if w[1] is not None]
    platform = env.get("QT_QPA_PLATFORM") or f"default, DISPLAY={env.get('DISPLAY', '')}"
    print(f"| measure ({repeat} runs, Qt platform: {platform}) | median s | min s |")
    print("|---|---|---|")
    print(f"| scubasteve --help | {statistics.median(helps):.2f} | {min(helps):.2f} |")
    print(f"| window first shown | {statistics.median(shown):.2f} | {min(shown):.2f} |")
    if engine:
        print(
            f"| engine ready ({windows[0][2]}) | {statistics.median(engine):.2f} | {min(engine):.2f} |"
        )
    elif windows[0][2]:
        print(f"engine: {windows[0][2]}")
    return 0
