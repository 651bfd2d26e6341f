"""Files we write open in labelme itself, and labelme saves them back without losing anything.

labelme is a PyQt5 application; it runs in a subprocess so that its Qt binding never meets PySide6.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scubasteve.core.annotation import Annotation, ImageDoc, MaskPatch
from scubasteve.io.images import encode_png
from scubasteve.io.labelme import write_labelme

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("labelme") is None, reason="labelme not installed"
)

LABELME_SCRIPT = r"""
import json, sys
from labelme._label_file import LabelFile
from labelme.app import MainWindow
from PyQt5 import QtWidgets

src, dst = sys.argv[1], sys.argv[2]
label_file = LabelFile(src)
app = QtWidgets.QApplication([])
window = MainWindow()
window._load_file(src)
window.save_labels(dst)
print(json.dumps({"file_shapes": [s["shape_type"] for s in label_file.shapes],
                  "window_shapes": len(window._canvas_widgets.canvas.shapes)}))
"""


def test_labelme_opens_our_file_and_saves_it_back_unchanged(tmp_path: Path) -> None:
    image = tmp_path / "img.png"
    image.write_bytes(
        encode_png(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    )
    donut = np.zeros((120, 160), bool)
    donut[10:80, 10:90] = True
    donut[30:50, 30:60] = False
    parts = np.zeros((120, 160), bool)
    parts[90:110, 100:150] = True
    parts[95, 0:20] = True
    patch = MaskPatch(np.eye(8, dtype=bool), 120, 10)
    annotations = [
        Annotation.from_mask("donut", donut, source="classic", score=0.9, seconds=2.0),
        Annotation.from_mask("two parts", parts),
        Annotation("masky", tuple(patch.to_polygons()), mask=patch, shape_type="mask"),
        Annotation("box", shape_type="rectangle", points=np.array([[5.0, 5.0], [20.0, 30.0]])),
    ]
    ours = tmp_path / "img.json"
    write_labelme(ImageDoc(image, 160, 120, annotations), ours)
    resaved = tmp_path / "resaved.json"

    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", LABELME_SCRIPT, str(ours), str(resaved)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    written = json.loads(ours.read_text())["shapes"]
    assert report["file_shapes"] == [s["shape_type"] for s in written]
    assert report["window_shapes"] == len(written) == 6

    again = json.loads(resaved.read_text())["shapes"]
    for key in ("label", "points", "group_id", "shape_type", "scubasteve"):
        assert [s.get(key) for s in again] == [s.get(key) for s in written], key
