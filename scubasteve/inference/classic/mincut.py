"""The minimum cut of a 4-connected pixel grid with PyMaxflow: the one place that calls it.

Kept apart from `graphcut` (which prepares the costs) and light to import (NumPy and PyMaxflow
only), because it is what the helper process runs (`offload`, ADR 0105): PyMaxflow holds the GIL
for the whole graph construction and flow computation.
"""

from __future__ import annotations

import numpy as np

_RIGHT = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]])
_DOWN = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])


def grid_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    w_right: np.ndarray,
    w_down: np.ndarray,
    smoothness: float,
) -> np.ndarray:
    """(h, w) bool, True = object: the labelling of least total cost.

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
    return ~graph.get_grid_segments(nodes)
