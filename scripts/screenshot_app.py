"""Take docs/screenshot.png: the window with proposals shown, on a real display (run under Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/screenshot_app.py \
        --images ../shared/data/coco128-seg/images --image 000000000009.jpg --label bowl \
        --box 1 187 612 473 --out docs/screenshot.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--image", required=True, help="file name of the image to show first")
    ap.add_argument("--label", required=True)
    ap.add_argument("--box", type=float, nargs=4, required=True, metavar=("X0", "Y0", "X1", "Y1"))
    ap.add_argument("--pick", type=int, default=1, help="proposal number to show (1..10)")
    ap.add_argument(
        "--accept",
        nargs=5,
        action="append",
        default=[],
        metavar=("LABEL", "X0", "Y0", "X1", "Y1"),
        help="annotate this object first (best proposal), so the docks show something",
    )
    ap.add_argument("--engine", default="ensemble")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    ap.add_argument("--max-kb", type=int, default=480)
    args = ap.parse_args()
    os.environ.setdefault("SCUBASTEVE_CONFIG_DIR", tempfile.mkdtemp())

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from scubasteve.core.settings import Settings
    from scubasteve.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    work = Path(tempfile.mkdtemp())
    names = sorted(p.name for p in args.images.iterdir())[:40]
    for name in names:
        os.symlink((args.images / name).resolve(), work / name)
    window = MainWindow(Settings(engine=args.engine), save_settings_on_close=False)
    window.resize(1500, 940)
    window.show()
    window.start(work)

    def wait(cond, timeout=120.0):  # type: ignore[no-untyped-def]
        end = time.time() + timeout
        while not cond():
            if time.time() > end:
                raise SystemExit("timed out")
            app.processEvents()
            time.sleep(0.005)

    wait(
        lambda: (
            window.annotator.entry is not None
            and window.status.engine.text() != "engine: starting…"
        )
    )
    window.project.go(names.index(args.image))
    wait(lambda: window.annotator.entry.path.name == args.image)
    vp = window.view.viewport()

    def drag(x0: float, y0: float, x1: float, y1: float) -> None:
        a, b = window.view.mapFromScene(x0, y0), window.view.mapFromScene(x1, y1)
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        QTest.mouseMove(vp, b)
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
        wait(lambda: window.proposals.result is not None and not window.proposals.result.partial)

    doc = window.documents.current.doc
    for label, *box in args.accept:
        window.annotator.set_label(label)
        drag(*map(float, box))
        before = len(doc.annotations)
        window.proposals.accept()  # (without a window manager the window may not get the keys)
        wait(lambda before=before: len(doc.annotations) > before)
    window.annotator.set_label(args.label)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.01)
    drag(*args.box)
    window.proposals.pick(args.pick - 1)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)
    image = window.grab().toImage()
    tmp = work / "shot.png"
    image.save(str(tmp))
    _shrink(tmp, args.out, args.max_kb)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _shrink(src: Path, dst: Path, max_kb: int) -> None:
    """Save as PNG under max_kb: first as is, then with fewer colours, then smaller."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    dst.parent.mkdir(parents=True, exist_ok=True)
    for colors, scale in ((0, 1.0), (256, 1.0), (128, 1.0), (256, 0.8), (128, 0.7)):
        out = img if scale == 1.0 else img.resize((int(img.width * scale), int(img.height * scale)))
        if colors:
            out = out.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        out.save(dst, optimize=True)
        if dst.stat().st_size <= max_kb * 1024:
            return


if __name__ == "__main__":
    raise SystemExit(main())
