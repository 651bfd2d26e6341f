"""`scubasteve bench large-image`: time and peak memory of one engine on a huge image.

Phases: `set_image`, a 600 x 400 box in the middle of the image, and a box over the whole image
(`--window`: the real window, offscreen, opening the image and the same two boxes dragged). For
each phase: seconds, the peak resident memory of the process (sampled every 2 ms from
/proc/self/statm; Linux) and its rise over the phase's start, and the Python-side peak
(tracemalloc, numpy arrays included; not torch's or OpenCV's internal buffers). Run one engine per
command: the peak of a process cannot be reset, and each engine loads its own libraries.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box

ENGINES = ("classic", "isnet", "ensemble", "deepmask")


def rss() -> int:
    """The process's resident memory now (bytes), 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class PeakSampler:
    """A thread that keeps the highest resident memory seen since the last `reset`."""

    def __init__(self, interval: float = 0.002) -> None:
        self.peak = rss()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, rss())

    def reset(self) -> None:
        self.peak = rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Phase:
    name: str
    seconds: float
    rss_start: int
    rss_peak: int
    python_peak: int
    note: str = ""


@contextmanager
def measured(name: str, sampler: PeakSampler, phases: list[Phase]) -> Iterator[list[str]]:
    """Measure the block as one phase; the block may append a note to the list it gets."""
    gc.collect()
    sampler.reset()
    tracemalloc.reset_peak()
    start, python_start = rss(), tracemalloc.get_traced_memory()[0]
    note: list[str] = []
    t0 = time.perf_counter()
    yield note
    seconds = time.perf_counter() - t0
    python_peak = tracemalloc.get_traced_memory()[1] - python_start
    sampler.peak = max(sampler.peak, rss())
    phases.append(Phase(name, seconds, start, sampler.peak, python_peak, "; ".join(note)))


def make_image(size: tuple[int, int], photo: Path | None) -> np.ndarray:
    """(H, W, 3) uint8: `photo` resized to `size` (width, height), or a synthetic scene."""
    width, height = size
    if photo is not None:
        from scubasteve.io.images import load_image

        return np.ascontiguousarray(
            cv2.resize(load_image(photo), (width, height), interpolation=cv2.INTER_LINEAR)
        )
    ramp = np.linspace(40, 200, width, dtype=np.float32)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = np.stack([ramp, ramp[::-1], np.full(width, 90, np.float32)], axis=1).astype(np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 3, (200, 40, 40), -1)
    cv2.rectangle(image, (width // 8, height // 8), (width // 4, height // 4), (30, 160, 60), -1)
    return image


def boxes_for(width: int, height: int) -> dict[str, Box]:
    cx, cy = width / 2, height / 2
    return {
        "600x400 box": Box(
            max(0, cx - 300), max(0, cy - 200), min(width, cx + 300), min(height, cy + 200)
        ),
        "whole-image box": Box(0, 0, width, height),
    }


def make_engine(name: str, weights: str | None, device: str) -> Any:
    """The engine to measure: IS-Net from `weights` (default: the installed one); the ensemble is
    IS-Net ranked with the classic engine; DeepMask from `weights`, or the published layout with
    random weights when none is given."""
    from scubasteve.inference.classic import ClassicProposer

    if name == "classic":
        return ClassicProposer()
    if name in ("isnet", "ensemble"):
        from scubasteve.inference.isnet import load_proposer

        net = load_proposer(weights, device)
        if name == "isnet":
            return net
        from scubasteve.inference.isnet.with_classic import IsnetWithClassic

        return IsnetWithClassic(net, ClassicProposer())
    if name == "deepmask":
        if weights:
            from scubasteve.inference.deepmask import load_proposer as load_deepmask

            return load_deepmask(weights, device)
        import torch

        from scubasteve.inference.deepmask import DeepMaskConfig
        from scubasteve.inference.deepmask.network import build_network
        from scubasteve.inference.deepmask.proposer import DeepMaskProposer

        torch.manual_seed(0)
        config = DeepMaskConfig()
        return DeepMaskProposer(build_network(config), config, "cpu")
    raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def _describe(proposals: list[Any]) -> str:
    if not proposals:
        return "no proposals"
    sizes = [p.patch.mask.nbytes for p in proposals]
    return (
        f"{len(proposals)} proposals, masks {sum(sizes) / 1e6:.0f} MB in all, "
        f"largest {max(sizes) / 1e6:.0f} MB"
    )


def engine_phases(engine: Any, image: np.ndarray, sampler: PeakSampler) -> list[Phase]:
    phases: list[Phase] = []
    with measured("set_image", sampler, phases):
        engine.set_image(image)
    for name, box in boxes_for(image.shape[1], image.shape[0]).items():
        with measured(name, sampler, phases) as note:
            proposals = engine.propose(box, k=10)
            note.append(_describe(proposals))
        del proposals
    return phases


def window_phases(
    factory: Callable[[], Any], image: np.ndarray, engine: str, sampler: PeakSampler
) -> list[Phase]:
    """The real window (offscreen) opening the image and solving the boxes dragged on it."""
    from scubasteve.bench.window import bench_window, wait_until

    phases: list[Phase] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        cv2.imwrite(str(folder / "huge.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        height, width = image.shape[:2]
        args = argparse.Namespace(engine=engine, device="cpu")
        with measured("window opens the image", sampler, phases) as note:
            app, window, _info = stack.enter_context(
                bench_window(folder, args, proposer_factory=lambda _name, _device: factory())
            )
            window.engine.wait_idle(600000)
            note.append("decoding, display pyramid and set_image")
        for name, box in boxes_for(width, height).items():
            window.proposals.discard()
            with measured(name + " (dragged)", sampler, phases) as note:
                _drag(window, box)
                done = wait_until(
                    app,
                    lambda: (
                        window.proposals.result is not None and not window.proposals.result.partial
                    ),
                    600,
                )
                views = len(window.proposals.result.views) if done else 0
                note.append(f"{views} proposals shown" if done else "no answer in 600 s")
    return phases


def _drag(window: Any, box: Box) -> None:
    """A left-button drag from one corner of `box` to the other, as a user makes it."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    viewport = window.view.viewport()
    a = window.view.mapFromScene(box.x0 + 1, box.y0 + 1)
    b = window.view.mapFromScene(box.x1 - 1, box.y1 - 1)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(viewport, (a + b) / 2)
    QTest.mouseMove(viewport, b)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise InputError(f"--size must be WIDTHxHEIGHT, e.g. 12000x9000, got {text!r}")
    return width, height


def run(args: argparse.Namespace) -> int:
    """`scubasteve bench large-image` (options in cli/bench.py)."""
    size = parse_size(args.size)
    if args.engine not in ENGINES:
        raise InputError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
    image = make_image(size, args.photo)
    engine = make_engine(args.engine, args.weights, args.device)
    sampler = PeakSampler()
    tracemalloc.start()
    try:
        if args.window:
            phases = window_phases(lambda: engine, image, args.engine, sampler)
        else:
            phases = engine_phases(engine, image, sampler)
    finally:
        tracemalloc.stop()
        sampler.stop()
    source = args.photo.name if args.photo else "synthetic"
    print(
        f"{args.engine}{' in the window' if args.window else ''}: {size[0]}x{size[1]} image "
        f"({source}, {image.nbytes / 1e6:.0f} MB)"
    )
    print("| phase | seconds | peak RSS MB | rise MB | Python peak MB | result |")
    print("|---|---|---|---|---|---|")
    for p in phases:
        print(
            f"| {p.name} | {p.seconds:.2f} | {p.rss_peak / 1e6:.0f} | "
            f"{(p.rss_peak - p.rss_start) / 1e6:.0f} | {p.python_peak / 1e6:.0f} | {p.note} |"
        )
    return 0
