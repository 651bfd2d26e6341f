"""Engines on a 12,000 x 9,000 image (issue 22, item 7): a box costs what its crop costs.

The Python-side allocation (tracemalloc: numpy arrays included) of one box request is measured on
the huge image and on a small one with the same box; the image's size must not show. A whole-image
box returns whole-image masks (box-local patches as large as the image): what is allocated beyond
those proposals must stay a small multiple of one mask, never a float copy of the image.
Measurements of the peak RSS are in docs/large-images.md (`scubasteve bench large-image`).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from helpers.isnet import thin_state
from helpers.proposals import disc_scene

from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer, Proposal
from scubasteve.inference.classic import ClassicProposer

MB = 2**20
H, W = 9000, 12000
BOX = Box(5400, 4300, 6000, 4700)  # 600 x 400, on the disc's edge


def _thin_isnet():  # type: ignore[no-untyped-def]
    from scubasteve.inference.isnet.network import build_isnet
    from scubasteve.inference.isnet.proposer import IsnetOptions, IsnetProposer

    net = build_isnet(16)
    net.load_state_dict(thin_state(16))
    return IsnetProposer(net.eval(), "cpu", IsnetOptions(input_size=128), {})


def _ensemble() -> MaskProposer:
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic

    return IsnetWithClassic(_thin_isnet(), ClassicProposer(), concurrent=False)


ENGINES: dict[str, Callable[[], MaskProposer]] = {
    "classic": ClassicProposer,
    "isnet": _thin_isnet,
    "ensemble": _ensemble,
}


@pytest.fixture(scope="module")
def huge() -> np.ndarray:
    image, _ = disc_scene(h=H, w=W, centre=(6000, 4500), radius=3000, seed=2)
    return image


def _box_peak(engine: MaskProposer, image: np.ndarray, box: Box) -> tuple[int, list[Proposal]]:
    """The Python-side peak (bytes) of one request after `set_image`, and its proposals."""
    engine.set_image(image)
    engine.propose(box, k=10)  # warm-up: lazy imports and caches are not the request's
    tracemalloc.start()
    try:
        proposals = engine.propose(box, k=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, proposals


@pytest.mark.parametrize("name", list(ENGINES))
def test_a_box_on_a_12000_by_9000_image_costs_what_it_costs_on_a_small_one(
    huge: np.ndarray, name: str
) -> None:
    small = np.ascontiguousarray(huge[4000:5200, 5000:6600])  # 1,600 x 1,200 around the box
    peak_small, _ = _box_peak(ENGINES[name](), small, Box(400, 300, 1000, 700))
    peak_huge, proposals = _box_peak(ENGINES[name](), huge, BOX)
    print(f"{name}: {peak_huge / MB:.1f} MB on the huge image, {peak_small / MB:.1f} MB small")
    assert proposals
    assert peak_huge < peak_small + 8 * MB, "the request allocates with the image, not the box"
    assert peak_huge < 64 * MB  # the image is 309 MB
    for p in proposals:  # box-local masks, never image-sized
        assert p.patch.width <= 2 * BOX.width and p.patch.height <= 2 * BOX.height


def _beyond_the_proposals(name: str, image: np.ndarray) -> tuple[float, int]:
    """A whole-image box: (peak allocation beyond the returned masks, largest mask) in bytes."""
    engine = ENGINES[name]()
    engine.set_image(image)
    tracemalloc.start()
    try:
        proposals = engine.propose(Box(0, 0, W, H), k=10)
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert proposals
    return peak - retained, max(p.patch.mask.nbytes for p in proposals)


@pytest.mark.slow
def test_a_whole_image_box_allocates_little_beyond_its_whole_image_masks(huge: np.ndarray) -> None:
    extra, largest = _beyond_the_proposals("classic", huge)
    print(f"classic: {extra / MB:.0f} MB beyond the proposals (largest mask {largest / MB:.0f} MB)")
    assert extra < 2.5 * largest  # the resampled mask and its tight copy, one candidate at a time


@pytest.mark.slow
def test_isnet_whole_image_box_allocates_little_beyond_its_masks(huge: np.ndarray) -> None:
    extra, largest = _beyond_the_proposals("isnet", huge)
    print(f"isnet: {extra / MB:.0f} MB beyond the proposals (largest mask {largest / MB:.0f} MB)")
    assert extra < 2.5 * largest


def test_bench_large_image_reports_each_phase_of_an_engine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scubasteve.cli import main

    assert main(["bench", "large-image", "--engine", "classic", "--size", "800x600"]) == 0
    out = capsys.readouterr().out
    assert "classic: 800x600 image (synthetic, 1 MB)" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[0] for r in rows[1:]] == [
        "| set_image",
        "| 600x400 box",
        "| whole-image box",
    ]
    assert all("proposals, masks" in row and "in all, largest" in row for row in rows[2:])


def test_bench_large_image_refuses_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    from scubasteve.cli import main

    assert main(["bench", "large-image", "--size", "12000"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
