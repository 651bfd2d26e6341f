"""The classic engine's candidate generators, in the order they run.

The order is chosen for the user: the generator most often best comes first (so the first
proposal can be drawn within a few tens of milliseconds), then the cheapest distinct ones, then
the rest. Between generators the request's `CancelToken` is checked, so an obsolete request stops
within one generator's time (a few milliseconds).

Families: `gc` graph cuts with a shape prior and iterated colour models (ellipse, rounded box,
diagonal bands; plus "smaller" and "larger" re-cuts of the ellipse cut with a bias on the object
cost), `ws` watershed from a core and the ring, `geo` the pixels far (in edge-crossing distance)
from the ring, `shape` the plain ellipse and box, `variant`
(largest part with holes filled, thin attachments cut, convex hull), and `consensus` (pixels
on which most of the cuts agree).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.inference.classic import graphcut, shapes
from scubasteve.inference.classic.crop import Crop


@dataclass(frozen=True, eq=False)
class Candidate:
    """A candidate mask (h, w) bool at working resolution, the generator's name and family.

    `patch`: the image-resolution mask when the generator made one itself (on a finer window);
    None to resample `mask`.
    """

    name: str
    family: str
    mask: np.ndarray
    patch: MaskPatch | None = None


#: Biases added to the object cost of the ellipse cut for its smaller (> 0) and larger variants.
BIASES = (-1.0, -0.5, 0.5, 1.0)
#: Geodesic distance from the ring (in half box sides) beyond which the `geodesic` candidate keeps
#: pixels: the part of the box that the ring cannot reach without crossing edges.
GEODESIC_LEVEL = 0.4
#: Fraction of the box's longer working side: opening radius that cuts thin attachments.
THIN_PART = 0.08


def generate(crop: Crop, cancel: CancelToken | None = None) -> Iterator[Candidate]:
    """Yield candidates one by one; raises `Cancelled` between generators once `cancel` is set."""

    raise_if_cancelled(cancel)
    base = graphcut.segment(crop, graphcut.prior(crop, "ellipse"))
    yield Candidate("gc-ellipse", "gc", base.mask)
    raise_if_cancelled(cancel)
    ws70 = shapes.watershed(crop, 0.7)
    yield Candidate("ws-70", "ws", ws70)
    raise_if_cancelled(cancel)
    rounded = graphcut.segment(crop, graphcut.prior(crop, "rounded"), iterations=2).mask
    yield Candidate("gc-rounded", "gc", rounded)
    yield Candidate("ellipse", "shape", shapes.ellipse(crop))
    raise_if_cancelled(cancel)
    biased = {}
    for bias in BIASES:
        biased[bias] = graphcut.cut(crop, base.cost_fg + bias, base.cost_bg)
        name = f"gc-ellipse-{'smaller' if bias > 0 else 'larger'}{abs(bias):g}"
        yield Candidate(name, "gc", biased[bias])
        raise_if_cancelled(cancel)
    ws50 = shapes.watershed(crop, 0.5)
    yield Candidate("ws-50", "ws", ws50)
    far = crop.inbox & (crop.geodesic > GEODESIC_LEVEL)
    if far.any():
        yield Candidate("geodesic", "geo", shapes.fill_holes(shapes.largest_part(far)))
    raise_if_cancelled(cancel)
    diagonals = {}
    for shape in ("diagonal", "antidiagonal"):
        diagonals[shape] = graphcut.segment(crop, graphcut.prior(crop, shape), iterations=2).mask
        yield Candidate(f"gc-{shape}", "gc", diagonals[shape])
        raise_if_cancelled(cancel)
    radius = max(1, round(THIN_PART * max(crop.frame.box.width, crop.frame.box.height)))
    sources = {
        "gc-ellipse": base.mask,
        "gc-rounded": rounded,
        "ws-70": ws70,
        "gc-ellipse-smaller0.5": biased[0.5],
        "gc-ellipse-larger1": biased[-1.0],
        **{f"gc-{k}": m for k, m in diagonals.items()},
    }
    for name, mask in sources.items():
        if not mask.any():
            continue
        yield Candidate(f"{name}+filled", "variant", shapes.fill_holes(shapes.largest_part(mask)))
        if name in ("gc-ellipse", "gc-rounded", "ws-70"):
            yield Candidate(f"{name}+no-thin", "variant", shapes.without_thin_parts(mask, radius))
            yield Candidate(f"{name}+hull", "variant", shapes.convex_hull(mask))
        raise_if_cancelled(cancel)
    votes = np.mean(
        [m.astype(np.float32) for m in (base.mask, rounded, ws50, ws70, biased[-0.5], biased[0.5])],
        axis=0,
    )
    for level in (0.3, 0.5):
        yield Candidate(f"consensus{int(level * 100)}", "consensus", votes > level)
    yield Candidate("box", "shape", crop.inbox.copy())
