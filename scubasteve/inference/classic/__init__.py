"""The classic engine: mask proposals from a box with OpenCV, NumPy and a graph cut, no weights.

`ClassicProposer` implements `scubasteve.inference.base.MaskProposer`. Modules: `cache` (per-image
pyramid), `frame` and `crop` (the working window and its shared cues), `graphcut`, `shapes` and
`generate` (the candidate generators), `ranking` (scores without ground truth), `proposer`.
"""

from scubasteve.inference.classic.proposer import ClassicProposer

__all__ = ["ClassicProposer"]
