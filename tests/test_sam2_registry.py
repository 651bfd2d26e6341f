"""SAM 2 in the engine registry and the app's ensemble, with stand-in engines (fast).

Without the `sam2` package the engine is listed unavailable with the install command; with it, the
ensemble asks SAM 2 first and the classic engine only when SAM is unsure or fails.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.inference import engines
from scubasteve.inference.base import EngineBase, Proposal
from scubasteve.inference.classic import ClassicProposer
from scubasteve.inference.fallback import ClassicFallback
from scubasteve.inference.fusion import RankFusion
from scubasteve.inference.sam2.with_classic import Sam2WithClassic


class FakeEngine(EngineBase):
    """Returns fixed square masks with fixed scores; can be told to fail."""

    def __init__(self, name: str, squares: list[tuple[int, int, int]], scores: list[float]):
        self.name = name
        self.squares, self.scores = squares, scores
        self.calls = 0
        self.images = 0
        self.fail: Exception | None = None
        self.last_agreement = 1.0

    def set_image(self, image: np.ndarray) -> None:
        self.images += 1

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):  # type: ignore[no-untyped-def]
        self.previous = previous
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        out = []
        for (x, y, side), score in zip(self.squares, self.scores, strict=True):
            p = Proposal(MaskPatch(np.ones((side, side), bool), x, y), score, f"{self.name}:sq")
            out.append(p)
            if on_proposal is not None:
                on_proposal(p)
        return out[:k]


def _pair() -> tuple[FakeEngine, FakeEngine]:
    sam = FakeEngine("sam2", [(10, 10, 20), (10, 10, 10)], [0.95, 0.9])
    classic = FakeEngine("classic", [(30, 30, 20), (10, 10, 21)], [0.8, 0.7])
    return sam, classic


def test_a_sure_sam_answers_alone() -> None:
    sam, classic = _pair()
    ens = Sam2WithClassic(sam, classic)
    seen: list[Proposal] = []
    out = ens.propose(Box(0, 0, 50, 50), on_proposal=seen.append)
    assert [p.engine for p in out] == ["sam2", "sam2"]
    assert classic.calls == 0 and not ens.consulted_backup
    assert len(seen) == 2


@pytest.mark.parametrize(("score", "agreement"), [(0.5, 1.0), (0.95, 0.3)])
def test_an_unsure_sam_gets_the_classic_engine_as_second_opinion(
    score: float, agreement: float
) -> None:
    sam, classic = _pair()
    sam.scores = [score, score - 0.05]
    sam.last_agreement = agreement
    ens = Sam2WithClassic(sam, classic)
    out = ens.propose(Box(0, 0, 50, 50))
    assert ens.consulted_backup and classic.calls == 1
    mask = MaskPatch(np.ones((3, 3), bool), 1, 1)
    ens.propose(Box(0, 0, 50, 50), points=(), previous=mask)
    assert sam.previous is mask and classic.previous is mask  # both correct the same mask
    assert out[0].engine == "sam2"  # SAM 2 leads the fusion
    assert "classic" in {p.engine for p in out}
    # The classic square equal to SAM's best (IoU 400/441 > 0.9) is a duplicate and went.
    assert len(out) == 3


def test_a_failing_sam_leaves_the_classic_engine_serving() -> None:
    sam, classic = _pair()
    sam.fail = RuntimeError("CUDA out of memory")
    ens = ClassicFallback(Sam2WithClassic(sam, classic), classic)
    out = ens.propose(Box(0, 0, 50, 50))
    assert [p.engine for p in out] == ["classic", "classic"]
    assert "out of memory" in ens.note and ens.failure
    ens.propose(Box(0, 0, 50, 50))
    assert sam.calls == 1  # not asked again
    ens.set_image(np.zeros((8, 8, 3), np.uint8))
    assert sam.images == 0 and classic.images == 1


def test_without_the_package_sam2_is_unavailable_and_the_ensemble_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sam2" else real(name, *a)
    )
    status = {s.name: s for s in engines.engine_status()}
    assert not status["sam2"].available
    assert "SAM 2 package is not installed" in status["sam2"].reason
    assert "pip install" in status["sam2"].reason
    assert not status["ensemble"].reason.startswith("SAM 2")
    with pytest.raises(InputError, match="SAM 2 package is not installed"):
        engines.create_proposer("sam2")
    ens = engines.create_proposer("ensemble")
    assert isinstance(ens, RankFusion)
    assert ens.engines[0].name == "classic"


def test_sam2_without_weights_says_how_to_get_them() -> None:
    pytest.importorskip("sam2")
    status = {s.name: s for s in engines.engine_status()}
    assert not status["sam2"].available
    assert "scubasteve models download sam2.1-hiera-tiny" in status["sam2"].reason
    with pytest.raises(InputError, match=r"models download sam2\.1-hiera-tiny"):
        engines.create_proposer("sam2")
    assert isinstance(engines.create_proposer("ensemble").engines[0], ClassicProposer)


def test_the_app_setting_accepts_sam2() -> None:
    from scubasteve.core.settings import ENGINES

    assert "sam2" in ENGINES and "sam2" in engines.ENGINE_NAMES


def test_self_test_step_passes_with_a_note_without_the_extra(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from scubasteve.selftest import Context, check_sam2

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sam2" else real(name, *a)
    )
    assert check_sam2(Context(workdir=tmp_path)) == "not installed (optional: the `sam` extra)"
