"""Latency of the SAM 2 engine per step: set_image, first proposal, all ten, one click.

    python scripts/sam2_latency.py --weights sam2.1_hiera_tiny.pt [--image photo.jpg]
        [--sizes 640 1024] [--boxes 3] [--clicks 2] [--device cpu]

Each size rescales the image so its longer side has that many pixels; boxes are drawn around
the image centre at a few sizes, and each click is put on the centre of the part of the box that the
current top proposal gets wrong (as an annotator would). Cost does not depend on the weights, so a
random-initialised checkpoint measures the same as the published one. Prints a Markdown table
(medians, milliseconds of wall time, and in brackets the CPU time the process used, which on a loaded
machine says more about the cost than the wall time). A measurement, never a pass/fail test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from scubasteve.core.geometry import Box
from scubasteve.inference.base import PromptPoint
from scubasteve.inference.sam2 import proposer_from_file


def _image(path: Path | None, side: int) -> np.ndarray:
    if path is None:
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (side * 3 // 4, side, 3), dtype=np.uint8)
    else:
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    scale = side / max(img.shape[:2])
    size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
    return np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA))


def _click(mask: np.ndarray, box: Box) -> PromptPoint:
    """A positive click on the box's centre if the mask misses it, else a negative one beside."""
    cx, cy = box.center
    if not mask[int(cy), int(cx)]:
        return PromptPoint(cx, cy, True)
    return PromptPoint(box.x0 + 2, box.y0 + 2, False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 1024])
    ap.add_argument("--boxes", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    t0 = time.perf_counter()
    engine = proposer_from_file(args.weights, args.device)
    print(f"model {engine.meta['variant']} on {engine.meta['device']}: "
          f"loaded in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    print(
        "| image | set_image ms (cpu) | first proposal ms | all ten ms (cpu) "
        "| per click ms (cpu) | boxes, clicks |"
    )
    print("|---|---|---|---|---|---|")
    for side in args.sizes:
        image = _image(args.image, side)
        h, w = image.shape[:2]
        t0, c0 = time.perf_counter(), time.process_time()
        engine.set_image(image)
        set_ms = 1000 * (time.perf_counter() - t0)
        set_cpu = 1000 * (time.process_time() - c0)
        firsts, alls, clicks, all_cpu, click_cpu = [], [], [], [], []
        for i in range(args.boxes):
            frac = 0.2 + 0.15 * i
            box = Box(w / 2 - frac * w, h / 2 - frac * h, w / 2 + frac * w, h / 2 + frac * h)
            first: list[float] = []
            t0, c0 = time.perf_counter(), time.process_time()
            props = engine.propose(box, on_proposal=lambda p, t=t0, f=first: f.append(
                time.perf_counter() - t) if not f else None)  # fmt: skip
            alls.append(1000 * (time.perf_counter() - t0))
            all_cpu.append(1000 * (time.process_time() - c0))
            firsts.append(1000 * first[0] if first else alls[-1])
            points: list[PromptPoint] = []
            for _ in range(args.clicks):
                points.append(_click(props[0].full_mask(h, w), box))
                t0, c0 = time.perf_counter(), time.process_time()
                props = engine.propose(box, points=points)
                clicks.append(1000 * (time.perf_counter() - t0))
                click_cpu.append(1000 * (time.process_time() - c0))
        med = statistics.median
        print(f"| {w}x{h} | {set_ms:.0f} ({set_cpu:.0f}) | {med(firsts):.0f} | "
              f"{med(alls):.0f} ({med(all_cpu):.0f}) | {med(clicks):.0f} ({med(click_cpu):.0f}) "
              f"| {len(alls)}, {len(clicks)} |")  # fmt: skip


if __name__ == "__main__":
    main()
