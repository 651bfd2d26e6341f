"""The SAM 2 engine on a random-initialised SAM 2.1 hiera-tiny written in upstream's file format.

The weights are random, so nothing here asserts mask quality: the tests check what the engine does
with SAM's outputs (ten distinct proposals ranked by predicted IoU, clicks fed back with the
previous logits, cancellation, the embedding cache) and that the file goes through the weights
manager. Slow: building and running the real architecture on a CPU takes seconds per image.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sam2")
torch = pytest.importorskip("torch")

from scubasteve import weights  # noqa: E402
from scubasteve.core.cancel import Cancelled, CancelToken  # noqa: E402
from scubasteve.core.errors import InputError  # noqa: E402
from scubasteve.core.geometry import Box  # noqa: E402
from scubasteve.inference.base import PromptPoint, patch_iou  # noqa: E402
from scubasteve.inference.sam2 import build_model, proposer_from_file  # noqa: E402
from scubasteve.inference.sam2 import proposer as engine_mod  # noqa: E402
from scubasteve.weights import registry as weights_registry  # noqa: E402

pytestmark = pytest.mark.slow

BOX = Box(60, 40, 180, 130)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised SAM 2.1 hiera-tiny saved as upstream does: {"model": state_dict}."""
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(60, 120, (160, 240, 3), dtype=np.uint8)
    image[50:120, 70:170] = (230, 200, 40)  # the object
    return image


@pytest.fixture(scope="module")
def engine(checkpoint: Path, scene: np.ndarray):  # type: ignore[no-untyped-def]
    proposer = proposer_from_file(checkpoint, "cpu")
    proposer.set_image(scene)
    return proposer


def _spy_decode(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []
    real = engine_mod.decode

    def spy(model, transforms, features, hw, prompt):  # type: ignore[no-untyped-def]
        calls.append(prompt)
        return real(model, transforms, features, hw, prompt)

    monkeypatch.setattr(engine_mod, "decode", spy)
    return calls


def test_ten_distinct_proposals_ranked_by_predicted_iou(engine, scene) -> None:  # type: ignore[no-untyped-def]
    engine.set_image(scene)
    delivered = []
    props = engine.propose(BOX, k=10, on_proposal=delivered.append)
    assert len(props) == 10
    for i, p in enumerate(props):
        assert p.source.startswith("sam2:")
        assert all(patch_iou(p.patch, q.patch) <= 0.9 for q in props[:i])
        predicted = p.extras["predicted_iou"]
        if "cut" in p.extras:  # cut at another level: below the mask it was cut from
            assert p.score <= predicted + 1e-6
        else:
            assert p.score == pytest.approx(predicted)
    assert [p.score for p in props] == sorted((p.score for p in props), reverse=True)
    # Progressive: proposals arrived before the call returned, each distinct from the earlier.
    assert 1 <= len(delivered) <= 10
    # The first shown is SAM's own choice among its three masks for the box.
    assert delivered[0].source.startswith("sam2:box-m")
    box_ious = [p.extras["predicted_iou"] for p in delivered if p.source.startswith("sam2:box-m")]
    assert delivered[0].extras["predicted_iou"] == max(box_ious)
    for i, p in enumerate(delivered):
        assert all(patch_iou(p.patch, q.patch) <= 0.9 for q in delivered[:i])
    assert engine.meta["variant"] == "SAM 2.1 hiera-tiny"


def test_clicks_feed_back_the_previous_logits_and_change_the_answer(
    engine, scene, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    engine.set_image(scene)
    before = engine.propose(BOX, k=10)
    previous = engine._last[3]
    top = before[0].full_mask(*scene.shape[:2])
    ys, xs = np.nonzero(~top[40:130, 60:180])  # a pixel of the box the top mask leaves out
    if len(xs):
        click = PromptPoint(60 + float(xs[0]) + 0.5, 40 + float(ys[0]) + 0.5, True)
    else:
        click = PromptPoint(120.5, 85.5, False)
    calls = _spy_decode(monkeypatch)
    after = engine.propose(BOX, k=10, points=[click])
    first = calls[0]
    assert first.tag == "clicks" and not first.multimask
    assert first.points is not None and first.points[0, 0].tolist() == [click.x, click.y]
    assert first.mask_input is not None and np.array_equal(first.mask_input, previous)
    assert not np.array_equal(after[0].full_mask(*scene.shape[:2]), top)
    # Masks that honour the click rank before those that contradict it.
    honours = []
    for p in after:
        inside = bool(p.full_mask(*scene.shape[:2])[int(click.y), int(click.x)])
        honours.append(inside == click.positive)
    assert honours == sorted(honours, reverse=True)
    # The mask the user corrects (`previous`) gives its own logits, not the top one's.
    chosen = after[-1]
    expected = engine_ranking_logits(engine, chosen)
    top_logits = engine_ranking_logits(engine, after[0])
    calls.clear()
    engine.propose(BOX, k=3, points=[click], previous=chosen.patch)
    assert np.array_equal(calls[0].mask_input, expected)
    if chosen is not after[0] and not np.array_equal(expected, top_logits):
        assert not np.array_equal(calls[0].mask_input, top_logits)
    # A new box starts afresh: no logits from another box are fed back.
    calls.clear()
    engine.propose(Box(10, 10, 60, 60), k=3, points=[PromptPoint(30, 30)])
    assert calls[0].mask_input is None


def engine_ranking_logits(engine, proposal) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The logits the engine kept for one of its last returned proposals."""
    for patch, logits in engine._last[4]:
        if patch is proposal.patch:
            return logits
    raise AssertionError("not one of the last proposals")


def test_cancellation_stops_between_decoder_calls(
    engine, scene, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    engine.set_image(scene)
    token = CancelToken()
    token.cancel()
    calls = _spy_decode(monkeypatch)
    with pytest.raises(Cancelled):
        engine.propose(BOX, cancel=token)
    assert calls == []
    token = CancelToken()
    with pytest.raises(Cancelled):
        engine.propose(BOX, cancel=token, on_proposal=lambda p: token.cancel())
    assert len(calls) == 1


def test_embedding_cache_and_prefetch(engine, scene) -> None:  # type: ignore[no-untyped-def]
    runs = engine.encoder_runs
    engine.set_image(scene.copy())  # same pixels: from the cache
    assert engine.encoder_runs == runs
    other = np.ascontiguousarray(scene[::-1])
    thread = engine.prefetch(other)
    assert thread is not None
    assert engine.prefetch(other) is None  # already under way
    engine.set_image(other)  # waits for the prefetch instead of encoding again
    assert engine.encoder_runs == runs + 1
    assert engine.propose(BOX, k=2)
    engine.set_image(scene)  # going back is free
    assert engine.encoder_runs == runs + 1


def test_prefetches_share_one_worker_thread_that_ends_with_the_engine(engine) -> None:  # type: ignore[no-untyped-def]
    # On CUDA a new thread's first encoder pass costs ~10x a warm one: one thread serves them all.
    import gc

    proposer = engine_mod.Sam2Proposer(engine.model, "cpu")
    threads: list[threading.Thread] = []

    def fake_encode(rgb: np.ndarray) -> engine_mod.Embedding:
        threads.append(threading.current_thread())
        return engine_mod.Embedding({}, rgb.shape[:2])

    proposer._encode = fake_encode
    images = [np.full((8, 8, 3), v, np.uint8) for v in (1, 2, 3)]
    futures = [proposer.prefetch(im) for im in images]
    for f in futures:
        assert f is not None
        f.result(timeout=30)
    assert len({t.ident for t in threads}) == 1 and threads[0] is not threading.main_thread()
    assert all(engine_mod.image_key(im) in proposer._cache for im in images)
    worker = threads[0]
    del proposer, futures, fake_encode
    gc.collect()
    worker.join(timeout=10)
    assert not worker.is_alive()


def test_mismatched_checkpoint_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    sd = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    key = "sam_mask_decoder.iou_token.weight"
    sd[key] = torch.zeros(1, 3)
    bad = tmp_path / "bad.pt"
    torch.save({"model": sd}, bad)
    with pytest.raises(InputError, match=r"does not fit the SAM 2\.1 hiera-tiny config"):
        build_model(bad)
    del sd[key]
    torch.save({"model": sd}, bad)
    with pytest.raises(InputError, match="1 missing weights"):
        build_model(bad)


@pytest.fixture
def server(checkpoint: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(checkpoint.parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_import_and_the_engines_that_use_them(
    checkpoint: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from scubasteve.cli import main
    from scubasteve.inference.engines import create_proposer, engine_status
    from scubasteve.inference.fallback import ClassicFallback
    from scubasteve.inference.sam2.with_classic import Sam2WithClassic

    status = {s.name: s for s in engine_status()}
    assert not status["sam2"].available and "sam2.1-hiera-tiny" in status["sam2"].reason
    assert main(["models", "import", "sam2.1-hiera-tiny", str(checkpoint)]) == 0
    assert weights.installed_path("sam2.1-hiera-tiny") is not None
    weights.remove("sam2.1-hiera-tiny")

    models = tuple(
        dataclasses.replace(m, url=f"{server}/{m.filename}") if m.kind == "sam2" else m
        for m in weights_registry.KNOWN_MODELS
    )
    monkeypatch.setattr(weights_registry, "KNOWN_MODELS", models)
    path = weights.download("sam2.1-hiera-tiny")
    assert path.read_bytes()[:4] == checkpoint.read_bytes()[:4]
    status = {s.name: s for s in engine_status()}
    assert status["sam2"].available and status["ensemble"].reason.startswith("SAM 2 first")
    ensemble = create_proposer("ensemble", device="cpu")
    assert isinstance(ensemble, ClassicFallback)
    assert isinstance(ensemble.primary, Sam2WithClassic)
    assert ensemble.primary.primary.meta["file"] == str(path)
    # The tiny file served under the small model's address is refused and not installed.
    small = checkpoint.parent / "sam2.1_hiera_small.pt"
    if not small.exists():
        small.symlink_to(checkpoint)
    with pytest.raises(weights.ChecksumMismatch, match=r"not SAM 2\.1 hiera-small"):
        weights.download("sam2.1-hiera-small")
    assert weights.installed_path("sam2.1-hiera-small") is None
