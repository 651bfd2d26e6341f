"""`scubasteve bench clicks`: click placement, NoC counting and the protocol loop, on synthetic scenes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_bench_proposals import write_coco

from scubasteve.bench.clicks import (
    ClickReport,
    ClickTrace,
    format_table,
    interior_point,
    next_click,
    run_object,
)
from scubasteve.bench.samples import make_sample
from scubasteve.cli import main
from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint, Proposal


def rect(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_interior_point_is_the_pixel_farthest_from_the_region_border():
    region = rect(50, 80, 10, 10, 31, 31)  # 21 x 21: centre pixel (20, 20)
    x, y, dist = interior_point(region)
    assert (x, y) == (20.5, 20.5)
    assert dist == pytest.approx(11, abs=0.6)
    x, y, _ = interior_point(rect(50, 80, 10, 10, 51, 31))  # 41 x 21: on the middle row
    assert y == 20.5 and 20 <= x <= 41
    assert interior_point(np.zeros((5, 5), bool)) is None


def test_the_image_border_counts_as_region_border():
    region = rect(40, 40, 0, 0, 20, 40)  # touches the left, top and bottom borders
    x, _, _ = interior_point(region)
    assert 8 <= x <= 12  # the middle of the strip, not its left edge


def test_next_click_goes_to_the_deeper_error_with_its_sign():
    gt = rect(100, 100, 10, 10, 70, 70)
    missed_big = gt & ~rect(100, 100, 10, 10, 70, 40)  # lower half missed (60 x 30)
    pred = gt & ~missed_big
    click = next_click(gt, pred | rect(100, 100, 80, 80, 84, 84))  # plus a small false blob
    assert click is not None and click.positive
    assert 10 <= click.x <= 70 and 40 <= click.y <= 70

    extra = rect(100, 100, 72, 10, 99, 90)  # a wide false strip beside the object
    click = next_click(gt, gt | extra)
    assert click is not None and not click.positive
    assert extra[int(click.y), int(click.x)]
    assert next_click(gt, gt.copy()) is None


def test_noc_counts_clicks_to_each_threshold_and_the_maximum_when_never_reached():
    trace = ClickTrace("a", "img", ious=[0.5, 0.7, 0.86, 0.91, 0.95])
    assert trace.noc(0.85, 20) == 2
    assert trace.noc(0.90, 20) == 3
    assert trace.noc(0.99, 20) == 20
    assert ClickTrace("b", "img", ious=[0.95]).noc(0.90, 20) == 0  # the box alone
    assert trace.iou_after(10) == 0.95  # past the last round the last value holds


def test_report_figures_from_traces():
    report = ClickReport("x", "best", 20)
    report.traces = [
        ClickTrace("a", "i", ious=[0.5, 0.95], latencies=[0.1, 0.2]),
        ClickTrace("b", "i", ious=[0.1] * 21, latencies=[0.1] * 21),
    ]
    assert report.mean_noc(0.90) == pytest.approx((1 + 20) / 2)
    assert report.share_never(0.90) == pytest.approx(0.5)
    assert report.mean_iou_after(1) == pytest.approx((0.95 + 0.1) / 2)
    table = format_table([report])
    assert "| x | best of ten | 2 |" in table


class DiscPainter:
    """A proposer that answers the box with its left half, and each click by painting a disc of
    `radius` pixels of the truth's label around it onto `previous` (a perfectly local editor)."""

    name = "painter"

    def __init__(self, gt: np.ndarray, radius: int = 12) -> None:
        self.gt, self.radius = gt, radius
        self.previous_seen: list[MaskPatch | None] = []

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):
        self.previous_seen.append(previous)
        h, w = self.shape
        if previous is None:
            mask = self.gt.copy()
            mask[:, w // 2 :] = False
        else:
            mask = previous.to_full(h, w)
            p = points[-1]
            disc = np.zeros((h, w), np.uint8)
            cv2.circle(disc, (int(p.x), int(p.y)), self.radius, 1, -1)
            disc = disc.astype(bool)
            mask[disc] = self.gt[disc] if p.positive else False
        return [Proposal(MaskPatch.from_full(mask), 1.0, "painter")]


def test_the_protocol_accumulates_clicks_passes_the_kept_mask_and_converges():
    h, w = 120, 160
    gt = rect(h, w, 20, 20, 140, 100)
    sample = make_sample("obj", gt, 0.05)
    assert sample is not None
    engine = DiscPainter(gt, radius=25)
    engine.set_image(np.zeros((h, w, 3), np.uint8))
    trace = run_object(engine, sample, h, w, max_clicks=20)
    assert trace.ious[0] == pytest.approx(0.5, abs=0.02)
    assert engine.previous_seen[0] is None
    assert all(p is not None for p in engine.previous_seen[1:])
    assert trace.ious[-1] >= 0.90
    assert all(b >= a for a, b in zip(trace.ious, trace.ious[1:], strict=False))  # a painter
    assert len(trace.ious) == len(trace.latencies) == max(6, trace.noc(0.90, 20) + 1)


def test_no_box_mode_starts_from_one_click_at_the_object_centre():
    h, w = 100, 100
    gt = rect(h, w, 30, 30, 71, 71)
    sample = make_sample("obj", gt, 0.05)
    assert sample is not None
    seen: list[tuple[Box, tuple[PromptPoint, ...]]] = []

    class Recorder(DiscPainter):
        def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):
            seen.append((box, tuple(points)))
            return [Proposal(MaskPatch.from_full(self.gt), 1.0, "oracle")]

    engine = Recorder(gt)
    engine.set_image(np.zeros((h, w, 3), np.uint8))
    trace = run_object(engine, sample, h, w, no_box=True)
    box, points = seen[0]
    assert (box.width, box.height) == (w, h)  # no box: the whole image
    assert len(points) == 1 and points[0].positive
    assert (points[0].x, points[0].y) == (50.5, 50.5)
    assert trace.ious == [0.0, 1.0]
    assert trace.noc(0.90, 20) == 1


def test_keep_top_follows_the_ranking_and_keep_best_the_truth():
    h, w = 60, 60
    gt = rect(h, w, 10, 10, 50, 50)
    sample = make_sample("obj", gt, 0.05)
    assert sample is not None

    class TwoChoices(DiscPainter):
        def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):
            wrong = rect(h, w, 10, 10, 20, 20)
            return [
                Proposal(MaskPatch.from_full(wrong), 0.9, "wrong"),
                Proposal(MaskPatch.from_full(gt), 0.1, "right"),
            ]

    engine = TwoChoices(gt)
    engine.set_image(np.zeros((h, w, 3), np.uint8))
    assert run_object(engine, sample, h, w, keep="best", max_clicks=3).ious[0] == 1.0
    assert run_object(engine, sample, h, w, keep="top", max_clicks=3).ious[0] < 0.1


def test_bench_clicks_command_prints_both_keep_modes_and_writes_traces(tmp_path, capsys):
    coco = write_coco(tmp_path)
    out = tmp_path / "clicks.json"
    rc = main(
        [
            "bench",
            "clicks",
            "--coco",
            str(coco),
            "--images",
            str(tmp_path / "images"),
            "--max-clicks",
            "3",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    table = capsys.readouterr().out
    assert "best of ten" in table and "top-ranked" in table
    runs = json.loads(out.read_text())["runs"]
    assert [r["keep"] for r in runs] == ["best", "top"]
    assert len(runs[0]["traces"]) == 3
    for t in runs[0]["traces"]:
        assert 1 <= len(t["ious"]) <= 4
        assert all(0.0 <= v <= 1.0 for v in t["ious"])
