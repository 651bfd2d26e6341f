"""`scubasteve bench clicks`: the interactive-segmentation protocol (NoC) with ten proposals.

The protocol of the RITM, f-BRS and SimpleClick papers, with the ten-proposal twist of this tool:
round 0 is the box alone (or, with `--no-box`, one positive click at the object's interior-most
point and a box-free prompt); after every round the simulated user keeps one proposal (the best of
the ten by IoU with the truth, or the top-ranked one) and the next click goes to the interior-most
point of the larger error of the kept mask: of the missed pixels (a positive click) or of the
extra ones (a negative click), whichever has the larger distance to its own border (pixels on the
image border count as border). Clicks accumulate; the engine also receives the kept mask as
`previous`. Reported: mean IoU after 0, 1, 2, 3, 5 clicks, NoC@85 and NoC@90 (an object that never
gets there within `--max-clicks` counts as the maximum), the share that never reaches 0.90, and the
latency per click. A run stops an object once it is at 0.90 with at least 5 clicks (later rounds
change none of the figures).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from scubasteve.bench.samples import Sample, SampleImage
from scubasteve.core.annotation import MaskPatch
from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer, PromptPoint, Proposal

#: IoU thresholds of the NoC figures; rounds go on until the last is reached (or the maximum).
THRESHOLDS = (0.85, 0.90)
#: Clicks after which the mean IoU is reported.
REPORTED_CLICKS = (0, 1, 2, 3, 5)
KEEP_MODES = ("best", "top")


@dataclass
class ClickTrace:
    """One object: the kept mask's IoU after 0, 1, 2, ... clicks, and each request's latency (s)."""

    key: str
    image: str
    ious: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def iou_after(self, clicks: int) -> float:
        """IoU after `clicks` clicks; past the last round the last value holds."""
        if not self.ious:
            return 0.0
        return self.ious[min(clicks, len(self.ious) - 1)]

    def noc(self, threshold: float, max_clicks: int) -> int:
        """Clicks needed to reach `threshold` (0 when the box alone does); `max_clicks` if never."""
        for clicks, iou in enumerate(self.ious):
            if iou >= threshold and clicks <= max_clicks:
                return clicks
        return max_clicks


def interior_point(region: np.ndarray) -> tuple[float, float, float] | None:
    """(x, y, distance) of the pixel of `region` farthest from its border (None if empty).

    Pixels outside the array count as border, as in the RITM evaluation code.
    """
    if not region.any():
        return None
    dist = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(c) + 0.5, float(r) + 0.5, float(dist[r, c])


def next_click(gt: np.ndarray, pred: np.ndarray) -> PromptPoint | None:
    """The protocol's next click for a kept mask `pred` against the truth `gt` ((H, W) bool each).

    Positive at the interior-most missed pixel or negative at the interior-most extra one, whichever
    lies deeper in its error; None when the mask is perfect.
    """
    missed = interior_point(gt & ~pred)
    extra = interior_point(pred & ~gt)
    if missed is None and extra is None:
        return None
    if extra is None or (missed is not None and missed[2] >= extra[2]):
        assert missed is not None
        return PromptPoint(missed[0], missed[1], True)
    return PromptPoint(extra[0], extra[1], False)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def run_object(
    proposer: MaskProposer,
    sample: Sample,
    height: int,
    width: int,
    *,
    image: str = "",
    max_clicks: int = 20,
    keep: str = "best",
    no_box: bool = False,
    k: int = 10,
) -> ClickTrace:
    """Play the protocol on one object of the image currently set in `proposer`."""
    if keep not in KEEP_MODES:
        raise ValueError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
    gt = sample.gt.to_full(height, width)
    trace = ClickTrace(sample.key, image)
    points: list[PromptPoint] = []
    box = sample.box
    if no_box:
        first = interior_point(gt)
        if first is None:
            return trace
        points.append(PromptPoint(first[0], first[1], True))
        box = Box(0, 0, width, height)
        trace.ious.append(0.0)  # no mask before the first click
    previous: MaskPatch | None = None
    pred = np.zeros_like(gt)
    while True:
        t0 = time.perf_counter()
        props = proposer.propose(box, k, points, previous=previous)
        trace.latencies.append(time.perf_counter() - t0)
        kept = _keep(props, gt, height, width, keep)
        if kept is not None:
            pred = kept.full_mask(height, width)
            previous = kept.patch
        trace.ious.append(_iou(pred, gt))
        clicks = len(points)
        if clicks >= max_clicks or (
            trace.ious[-1] >= max(THRESHOLDS) and clicks >= max(REPORTED_CLICKS)
        ):
            return trace
        click = next_click(gt, pred)
        if click is None:
            return trace
        points.append(click)


def _keep(
    props: Sequence[Proposal], gt: np.ndarray, height: int, width: int, keep: str
) -> Proposal | None:
    if not props:
        return None
    if keep == "top":
        return props[0]
    return max(props, key=lambda p: _iou(p.full_mask(height, width), gt))


@dataclass
class ClickReport:
    """All traces of one engine and keep mode; the summary figures are methods."""

    engine: str
    keep: str
    max_clicks: int
    traces: list[ClickTrace] = field(default_factory=list)

    def mean_iou_after(self, clicks: int) -> float:
        return float(np.mean([t.iou_after(clicks) for t in self.traces])) if self.traces else 0.0

    def mean_noc(self, threshold: float) -> float:
        values = [t.noc(threshold, self.max_clicks) for t in self.traces]
        return float(np.mean(values)) if values else 0.0

    def share_never(self, threshold: float = 0.90) -> float:
        if not self.traces:
            return 0.0
        never = [max(t.ious[: self.max_clicks + 1], default=0.0) < threshold for t in self.traces]
        return float(np.mean(never))

    def latency_ms(self, q: float) -> float:
        values = [v for t in self.traces for v in t.latencies[1:]] or [
            v for t in self.traces for v in t.latencies
        ]
        return 1000 * float(np.percentile(values, q)) if values else float("nan")


def evaluate_clicks(
    make_proposer: Callable[[], MaskProposer],
    images: Sequence[SampleImage],
    *,
    max_clicks: int = 20,
    keep: str = "best",
    no_box: bool = False,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[ClickTrace]:
    """Traces for every object, in sample order; `jobs` > 1 splits the images over processes."""
    if jobs > 1 and len(images) > 1 and _can_fork():
        return _evaluate_parallel(make_proposer, images, max_clicks, keep, no_box, jobs, progress)
    proposer = make_proposer()
    total = sum(len(si.samples) for si in images)
    traces: list[ClickTrace] = []
    for si in images:
        traces.extend(_image_traces(proposer, si, max_clicks, keep, no_box))
        if progress is not None:
            progress(len(traces), total)
    return traces


def _image_traces(
    proposer: MaskProposer, si: SampleImage, max_clicks: int, keep: str, no_box: bool
) -> list[ClickTrace]:
    proposer.set_image(si.load())
    return [
        run_object(
            proposer,
            s,
            si.height,
            si.width,
            image=si.name,
            max_clicks=max_clicks,
            keep=keep,
            no_box=no_box,
        )
        for s in si.samples
    ]


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


_WORK: dict[str, object] = {}


def _work_on(index: int) -> list[ClickTrace]:
    proposer = _WORK.get("proposer")
    if proposer is None:
        proposer = _WORK["proposer"] = _WORK["make"]()  # type: ignore[operator]
    images, args = _WORK["images"], _WORK["args"]
    return _image_traces(proposer, images[index], *args)  # type: ignore[index, arg-type]


def _evaluate_parallel(
    make_proposer: Callable[[], MaskProposer],
    images: Sequence[SampleImage],
    max_clicks: int,
    keep: str,
    no_box: bool,
    jobs: int,
    progress: Callable[[int, int], None] | None,
) -> list[ClickTrace]:
    import multiprocessing

    # Forked workers inherit the samples (their loaders are closures, which do not pickle).
    _WORK.clear()
    _WORK.update(make=make_proposer, images=images, args=(max_clicks, keep, no_box))
    total = sum(len(si.samples) for si in images)
    done = 0
    results: list[list[ClickTrace]] = []
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for traces in pool.imap(_work_on, range(len(images))):
            results.append(traces)
            done += len(traces)
            if progress is not None:
                progress(done, total)
    _WORK.clear()
    return [t for traces in results for t in traces]


def format_table(reports: Sequence[ClickReport]) -> str:
    """A Markdown table: one row per engine and keep mode."""
    ious = " / ".join(str(c) for c in REPORTED_CLICKS)
    lines = [
        f"| engine | user keeps | objects | mean IoU after {ious} clicks | NoC@85 | NoC@90 "
        "| never 0.90 | ms per click p50 / p90 |",
        "|" + "---|" * 8,
    ]
    for r in reports:
        after = " / ".join(f"{r.mean_iou_after(c):.3f}" for c in REPORTED_CLICKS)
        lines.append(
            f"| {r.engine} | {'best of ten' if r.keep == 'best' else 'top-ranked'} "
            f"| {len(r.traces)} | {after} | {r.mean_noc(0.85):.2f} | {r.mean_noc(0.90):.2f} "
            f"| {100 * r.share_never(0.90):.1f} % "
            f"| {r.latency_ms(50):.0f} / {r.latency_ms(90):.0f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The `scubasteve bench clicks` handler."""
    from scubasteve.bench.proposals import load_samples
    from scubasteve.core.errors import InputError
    from scubasteve.inference.engines import create_proposer

    if args.max_clicks < 1:
        raise InputError(f"--max-clicks must be at least 1, got {args.max_clicks}")
    images = load_samples(args)
    total = sum(len(si.samples) for si in images)
    if total == 0:
        raise InputError("no objects to evaluate", args.coco or args.labelme)
    reports = []
    for name in args.engine or ["classic"]:
        for keep in args.keep or list(KEEP_MODES):

            def make(name: str = name) -> MaskProposer:
                return create_proposer(
                    name, device=args.device, weights=args.weights, input_size=args.input_size
                )

            def progress(done: int, total: int, label: str = f"{name}/{keep}") -> None:
                if done % 25 == 0 or done == total:
                    print(f"  {label}: {done}/{total}", file=sys.stderr)

            traces = evaluate_clicks(
                make,
                images,
                max_clicks=args.max_clicks,
                keep=keep,
                no_box=args.no_box,
                jobs=args.jobs,
                progress=progress,
            )
            reports.append(ClickReport(name, keep, args.max_clicks, traces))
    print(format_table(reports))
    if args.out is not None:
        from scubasteve.core.atomic import atomic_write_json

        payload = {
            "protocol": {"max_clicks": args.max_clicks, "no_box": args.no_box},
            "runs": [
                {
                    "engine": r.engine,
                    "keep": r.keep,
                    "traces": [
                        {"key": t.key, "image": t.image, "ious": t.ious, "latency_s": t.latencies}
                        for t in r.traces
                    ],
                }
                for r in reports
            ],
        }
        atomic_write_json(args.out, payload, indent=None)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
