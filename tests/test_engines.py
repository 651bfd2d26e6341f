"""The engine registry and the baselines, with DeepMask faked (no weights exist in tests)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from helpers.proposals import box_around, disc_scene, full_iou

from scubasteve.core.errors import InputError
from scubasteve.core.geometry import Box
from scubasteve.inference.base import MaskProposer
from scubasteve.inference.baselines import BoxProposer, GrabCutProposer
from scubasteve.inference.classic import ClassicProposer
from scubasteve.inference.engines import ENGINE_NAMES, ENGINES, create_proposer, engine_status
from scubasteve.inference.fallback import ClassicFallback
from scubasteve.inference.fusion import RankFusion


class NotInstalled(InputError):
    """Stands in for the weights manager's WeightsNotInstalled (an InputError)."""


def fake_deepmask(monkeypatch: pytest.MonkeyPatch, *, installed: bool) -> list:
    """Install fake `scubasteve.inference.deepmask` modules; returns the load calls made."""
    calls: list = []
    package = types.ModuleType("scubasteve.inference.deepmask")
    models = types.ModuleType("scubasteve.inference.deepmask.weights")

    def resolve(weights):
        if not installed:
            raise NotInstalled("no DeepMask weights installed; run `scubasteve models download`")
        return Path("/fake/deepmask.pt")

    def load_proposer(weights=None, device="auto"):
        calls.append((weights, device))
        resolve(weights)
        engine = ClassicProposer()
        engine.name = "deepmask"
        return engine

    package.load_proposer = load_proposer
    models.resolve = resolve
    package.models = models
    monkeypatch.setitem(sys.modules, "scubasteve.inference.deepmask", package)
    monkeypatch.setitem(sys.modules, "scubasteve.inference.deepmask.weights", models)
    return calls


@pytest.mark.parametrize(
    ("name", "cls"),
    [("classic", ClassicProposer), ("box", BoxProposer), ("grabcut", GrabCutProposer)],
)
def test_engines_without_weights_are_created_by_name(name, cls):
    engine = create_proposer(name)
    assert isinstance(engine, cls)
    assert isinstance(engine, MaskProposer)
    assert engine.name == name


def test_every_engine_is_described_once_with_a_builder_and_a_check():
    assert tuple(ENGINES) == ENGINE_NAMES
    assert {"ensemble", "classic", "isnet", "deepmask", "sam2"} <= set(ENGINE_NAMES)
    for name, spec in ENGINES.items():
        assert spec.name == name and spec.summary
        assert callable(spec.build) and callable(spec.problem)
    assert [s.name for s in engine_status()] == list(ENGINE_NAMES)


def test_unknown_engine_name_is_a_clear_error():
    with pytest.raises(InputError, match=r"unknown engine 'sam'.*classic"):
        create_proposer("sam")


def test_deepmask_without_weights_says_how_to_get_them(monkeypatch):
    fake_deepmask(monkeypatch, installed=False)
    with pytest.raises(InputError, match="no DeepMask weights installed"):
        create_proposer("deepmask")


def test_deepmask_is_loaded_lazily_with_weights_and_device(monkeypatch):
    calls = fake_deepmask(monkeypatch, installed=True)
    engine = create_proposer("deepmask", device="cpu", weights="mine.pt")
    assert engine.name == "deepmask"
    assert calls == [("mine.pt", "cpu")]


def test_ensemble_without_any_weights_serves_classic_alone_and_names_the_model_to_get(monkeypatch):
    fake_deepmask(monkeypatch, installed=False)
    engine = create_proposer("ensemble")
    assert isinstance(engine, RankFusion)
    assert engine.engine_names == ["classic"]
    assert "classic engine serves alone" in engine.note
    # IS-Net is the model worth downloading first: the note says how to get it
    assert "isnet-general-use" in engine.note and "scubasteve models download" in engine.note


def test_ensemble_with_deepmask_weights_runs_both(monkeypatch):
    fake_deepmask(monkeypatch, installed=True)
    engine = create_proposer("ensemble", device="cpu")
    assert isinstance(engine, ClassicFallback)
    assert [e.name for e in engine.engines] == ["classic", "deepmask"]
    image, mask = disc_scene()
    engine.set_image(image)
    props = engine.propose(box_around(mask))
    assert full_iou(props[0], mask) > 0.9


def test_ensemble_when_the_deepmask_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "scubasteve.inference.deepmask", None)  # import fails
    engine = create_proposer("ensemble")
    assert engine.engine_names == ["classic"]
    assert "classic engine serves alone" in engine.note


def test_engine_status_without_deepmask_weights(monkeypatch):
    fake_deepmask(monkeypatch, installed=False)
    status = {s.name: s for s in engine_status()}
    assert list(status) == list(ENGINE_NAMES)
    assert status["classic"].available
    assert not status["deepmask"].available
    assert "no DeepMask weights installed" in status["deepmask"].reason
    assert status["ensemble"].available
    assert "classic engine serves alone" in status["ensemble"].reason
    assert not status["isnet"].available and "isnet-general-use" in status["isnet"].reason


def test_engine_status_with_deepmask_weights(monkeypatch):
    calls = fake_deepmask(monkeypatch, installed=True)
    status = {s.name: s for s in engine_status()}
    assert status["deepmask"].available and status["deepmask"].reason == ""
    assert "DeepMask" in status["ensemble"].reason
    assert calls == []  # status never loads a model


def test_box_baseline_returns_the_box():
    engine = BoxProposer()
    engine.set_image(np.zeros((50, 60, 3), np.uint8))
    props = engine.propose(Box(10.2, 5.0, 30.0, 25.4))
    assert len(props) == 1
    assert props[0].patch.box() == Box(10, 5, 30, 25)
    assert props[0].patch.mask.all()


def test_grabcut_baseline_finds_a_clear_object():
    image, mask = disc_scene()
    engine = GrabCutProposer()
    engine.set_image(image)
    props = engine.propose(box_around(mask))
    assert len(props) == 1 and props[0].engine == "grabcut"
    assert full_iou(props[0], mask) > 0.85


def test_grabcut_baseline_on_a_whole_image_box_gives_nothing_rather_than_crashing():
    engine = GrabCutProposer()
    engine.set_image(np.full((40, 40, 3), 100, np.uint8))
    assert engine.propose(Box(0, 0, 40, 40)) == []


@pytest.mark.parametrize("name", ["box", "grabcut"])
def test_baselines_reject_boxes_outside_the_image(name):
    engine = create_proposer(name)
    engine.set_image(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError):
        engine.propose(Box(30, 30, 40, 40))


def test_engine_status_when_the_deepmask_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "scubasteve.inference.deepmask", None)  # import fails
    status = {s.name: s for s in engine_status()}
    assert not status["deepmask"].available
    assert "not available in this installation" in status["deepmask"].reason
    assert status["ensemble"].available and status["classic"].available


def test_engine_status_says_what_the_classic_engine_misses(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "maxflow" else real(name, *a)
    )
    status = {s.name: s for s in engine_status()}
    assert not status["classic"].available
    assert "PyMaxflow" in status["classic"].reason
    assert not status["ensemble"].available


def test_deepmask_trust_follows_the_held_out_record():
    from scubasteve.inference.engines import deepmask_trust

    assert deepmask_trust(None, "'m'") == (1.0, "")
    worse = {
        "objects": 189,
        "top1": 0.443,
        "best": 0.506,
        "classic_top1": 0.643,
        "classic_best": 0.707,
    }
    weight, reason = deepmask_trust(worse, "'m'")
    assert weight == 0.0 and "'m'" in reason and "0.506" in reason and "0.707" in reason
    # measured worse on a few objects is still worse: never trusted over the classic engine
    few = dict(worse, objects=4)
    weight, reason = deepmask_trust(few, "'m'")
    assert weight == 0.0 and "4 held-out objects" in reason
    close = dict(worse, best=0.70, top1=0.5)
    weight, reason = deepmask_trust(close, "'m'")
    assert reason == "" and weight == pytest.approx(0.5 / 0.643)
    better = dict(worse, best=0.8, top1=0.75)
    assert deepmask_trust(better, "'m'") == (1.0, "")
    no_classic = {"objects": 189, "top1": 0.1, "best": 0.1}
    assert deepmask_trust(no_classic, "'m'") == (1.0, "")
