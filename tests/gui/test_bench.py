"""The benchmarks run end to end (with a fake engine) and the KLM estimate adds up its operators."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from helpers.gui_fakes import FakeProposer
from PIL import Image

from scubasteve.bench.klm import B, K, M, ObjectActions, P, human_seconds
from scubasteve.core.annotation import Annotation, ImageDoc

pytestmark = pytest.mark.gui


def test_klm_estimate_counts_each_operator():
    base = human_seconds(ObjectActions(label_keys=0, pick_keys=0, clicks=0, wait_seconds=0.0))
    assert base == pytest.approx(M + P + B + P + B + M + K)
    more = human_seconds(ObjectActions(label_keys=3, pick_keys=1, clicks=2, wait_seconds=0.5))
    # finishing by hand: tests/test_klm.py
    assert more - base == pytest.approx(M + 3 * K + K + 2 * (M + P + 2 * B) + 0.5)


def test_annotator_benchmark_plays_a_user_through_the_window(tmp_path, capsys):
    from scubasteve.bench.annotator import run
    from scubasteve.io.coco import write_coco

    images = tmp_path / "images"
    images.mkdir()
    docs = []
    for i in range(2):
        arr = np.full((120, 160, 3), 100, np.uint8)
        path = images / f"im{i}.png"
        Image.fromarray(arr).save(path)
        anns = []
        for j, label in enumerate(("cat", "dog")):
            mask = np.zeros((120, 160), bool)
            mask[20 + 10 * j : 80 + 10 * j, 20 + 60 * j : 70 + 60 * j] = True
            anns.append(Annotation.from_mask(label, mask))
        docs.append(ImageDoc(path, 160, 120, anns))
    coco = tmp_path / "instances.json"
    write_coco(coco, docs, categories=["cat", "dog"], root=images)
    out = tmp_path / "log.json"
    args = argparse.Namespace(
        coco=coco, images=images, limit=3, max_clicks=2, target_iou=0.9, engine="classic",
        device="cpu", out=out,
    )  # fmt: skip
    assert run(args, proposer_factory=lambda name, device: FakeProposer()) == 0
    printed = capsys.readouterr().out
    assert "| objects | 3 |" in printed and "latency p50 s" in printed
    log = json.loads(out.read_text())
    assert len(log["objects"]) == 3
    # The fake's proposal 0 is exactly the box, and these objects are boxes: IoU 1 with no clicks.
    assert all(o["iou"] > 0.95 and o["clicks"] == 0 for o in log["objects"])
    assert all(o["vertex_fixes"] == 0 for o in log["objects"])
    assert all(o["human_seconds_to_target"] == o["human_seconds"] for o in log["objects"])
    assert log["objects"][0]["label_keys"] == 0, "cat is the first label of the project"
    assert log["objects"][1]["label_keys"] >= 2, "dog was chosen with the picker"


def test_annotator_clicks_on_below_the_target_and_charges_the_rest_by_hand(tmp_path, capsys):
    from scubasteve.bench.annotator import run
    from scubasteve.io.coco import write_coco

    images = tmp_path / "images"
    images.mkdir()
    path = images / "disk.png"
    Image.fromarray(np.full((120, 160, 3), 100, np.uint8)).save(path)
    yy, xx = np.mgrid[:120, :160]
    disk = (yy - 60) ** 2 + (xx - 80) ** 2 <= 40**2  # the fake's rectangles reach IoU 0.79 at best
    coco = tmp_path / "instances.json"
    write_coco(coco, [ImageDoc(path, 160, 120, [Annotation.from_mask("cat", disk)])],
               categories=["cat"], root=images)  # fmt: skip
    out = tmp_path / "log.json"
    args = argparse.Namespace(
        coco=coco, images=images, limit=None, max_clicks=3, target_iou=0.9, engine="classic",
        device="cpu", out=out,
    )  # fmt: skip
    assert run(args, proposer_factory=lambda name, device: FakeProposer()) == 0
    (obj,) = json.loads(out.read_text())["objects"]
    assert obj["clicks"] == 3, "below the target the user clicks up to the maximum"
    assert obj["iou"] < 0.9 and obj["vertex_fixes"] >= 1
    assert obj["human_seconds_to_target"] > obj["human_seconds"]
    printed = capsys.readouterr().out
    assert "| finished by hand | 1.0 |" in printed
    assert "| human seconds per object to target |" in printed


def test_annotator_rejects_a_target_outside_zero_to_one(tmp_path):
    from scubasteve.bench.annotator import run
    from scubasteve.core.errors import InputError

    args = argparse.Namespace(coco=tmp_path / "none.json", images=tmp_path, limit=None,
                              max_clicks=10, target_iou=1.5, engine="classic", device="cpu",
                              out=None)  # fmt: skip
    with pytest.raises(InputError, match="target-iou"):
        run(args)


@pytest.mark.slow
def test_startup_benchmark_times_help_and_the_first_window(capsys, monkeypatch):
    from scubasteve.bench.startup import run

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert run(argparse.Namespace(repeat=1)) == 0
    out = capsys.readouterr().out
    assert "| scubasteve --help |" in out and "| window first shown |" in out


def test_carry_benchmark_plays_both_passes_and_reports_the_time_saved(tmp_path, capsys):
    from scubasteve.bench.carry import run
    from scubasteve.io.coco import write_coco

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    arr = (rng.random((160, 220, 3)) * 60).astype(np.uint8)  # texture: something to follow
    anns = []
    for j, label in enumerate(("cat", "dog", "cat")):
        mask = np.zeros((160, 220), bool)
        mask[30 + 30 * j : 70 + 30 * j, 20 + 60 * j : 70 + 60 * j] = True
        arr[mask] = (rng.random((int(mask.sum()), 3)) * 80 + 150).astype(np.uint8)
        anns.append(Annotation.from_mask(label, mask))
    path = images / "photo.png"
    Image.fromarray(arr).save(path)
    coco = tmp_path / "instances.json"
    write_coco(coco, [ImageDoc(path, 220, 160, anns)], categories=["cat", "dog"], root=images)
    args = argparse.Namespace(
        coco=coco, images=images, frames=None, pan=2, photos=1, max_clicks=2, target_iou=0.9,
        engine="classic", device="cpu",
    )  # fmt: skip
    assert run(args, proposer_factory=lambda name, device: FakeProposer()) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("| photo.png"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "6"  # three objects on each of frames 2 and 3
    scratch, carry = float(cells[2]), float(cells[3])
    assert carry < scratch  # the boxes moved with the pan: kept as carried, Y only
    assert cells[5].startswith("6 (6 as carried)") and float(cells[6]) > 0.9
