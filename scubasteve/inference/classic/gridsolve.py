"""The classic engine's solvers on the pixel grid whose C code holds the GIL.

PyMaxflow's minimum cut (`grid_cut`) and scikit-image's minimum-cost paths (`min_cost_paths`) keep
the GIL for their whole run, tens of milliseconds on a fine window, so the engine runs them in a
helper process (`offload`, ADR 0105), which imports `MODULES` before it reports ready.
"""

from __future__ import annotations

import numpy as np

_RIGHT = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]])
_DOWN = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])

#: Modules the helper process imports before it reports ready (so no call waits for an import).
MODULES = ("maxflow", "skimage.graph")


def grid_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    w_right: np.ndarray,
    w_down: np.ndarray,
    smoothness: float,
) -> np.ndarray:
    """(h, w) bool, True = object: the labelling of least total cost (a minimum cut).

    `cost_fg` / `cost_bg` (h, w): what labelling each pixel object / background costs;
    `w_right` / `w_down` (h, w): the weights of the edges to the right and lower neighbours
    (0 on the last column / row), each times `smoothness`, paid where neighbours differ.
    """
    import maxflow

    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(cost_fg.shape)
    graph.add_grid_edges(nodes, weights=smoothness * w_right, structure=_RIGHT, symmetric=True)
    graph.add_grid_edges(nodes, weights=smoothness * w_down, structure=_DOWN, symmetric=True)
    # Source side = object: the source capacity is what labelling a pixel background costs.
    graph.add_grid_tedges(nodes, cost_bg, cost_fg)
    graph.maxflow()
    sink_side = np.asarray(graph.get_grid_segments(nodes), dtype=bool)
    return ~sink_side


def min_cost_paths(cost: np.ndarray, starts: list[np.ndarray]) -> np.ndarray:
    """(h, w) float64: the least total `cost` (h, w) float64 of a path from any of `starts`
    ((row, col) each) to each pixel, 8-connected, diagonal steps weighted by their length."""
    from skimage.graph import MCP_Geometric

    distance, _ = MCP_Geometric(cost).find_costs(starts)
    return np.asarray(distance)
