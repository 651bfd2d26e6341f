"""DeepMask runs published weights as facebookresearch/deepmask does (issue 13).

Each test pins one behaviour of the upstream inference on a checkpoint of the published layout
(a Torch7 file written as the GPU-saved originals are, or a network of the same family):
the 0.2 mask threshold (`computeProposals.lua`), the 0.5 grey and 80 px margin (`InferDeepMask.lua`,
`DataSampler.lua`), all 7 scales in whole-image mode, `inn.ConstAffine` batch norms and CUDA
tensor types in `.t7` files.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from helpers import deepmask_t7 as t7

from scubasteve.core.geometry import Box
from scubasteve.inference.deepmask import network as N
from scubasteve.inference.deepmask import proposer_from_file
from scubasteve.inference.deepmask.checkpoint import build_model, save_weights
from scubasteve.inference.deepmask.config import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeepMaskConfig,
    tiny_config,
)
from scubasteve.inference.deepmask.convert import load_any
from scubasteve.inference.deepmask.features import compute_features
from scubasteve.inference.deepmask.proposer import DeepMaskOptions, DeepMaskProposer
from scubasteve.inference.deepmask.scaled_views import ImagePyramid
from scubasteve.inference.deepmask.tiles import halo_px, receptive_field, tiled_level


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _disc(m: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:m, 0:m] + 0.5
    return (xx - m / 2) ** 2 + (yy - m / 2) ** 2 <= r * r


def _faint_mask_t7(tmp_path, bn: str = t7.CONST_DIAGONAL):  # type: ignore[no-untyped-def]
    """A small published-layout DeepMask .t7 whose mask head ignores the image and draws a disc at
    probability 0.31 (between the published 0.2 and our former 0.5) on a background of p ~ 0."""
    rng = np.random.default_rng(5)
    obj = t7.deepmask_t7(rng, width=16, blocks=(1, 1, 1), fsz=5, oSz=28, bn=bn)
    branch = obj["model"].fields["maskBranch"]  # Sequential(Sequential(Linear), upsampling)
    head = branch.fields["modules"][0].fields["modules"][0]
    logit = math.log(0.31 / 0.69)
    head.fields["weight"] = np.zeros_like(head.fields["weight"])
    head.fields["bias"] = np.where(_disc(28, 9.0), logit, -8.0).reshape(-1).astype(np.float32)
    path = tmp_path / "model.t7"
    t7.write_t7(path, obj)
    return path


def _area_of_top_proposal(engine: DeepMaskProposer) -> int:
    engine.set_image(np.full((160, 160, 3), 90, np.uint8))
    props = engine.propose(Box(50, 50, 110, 110), k=3)
    return max((p.area for p in props), default=0)


def test_published_weights_keep_pixels_above_probability_0_2(tmp_path):
    path = _faint_mask_t7(tmp_path)
    published = proposer_from_file(path, device="cpu")
    assert published.options.thresholds == (0.2,)
    assert published.options.full_image_threshold == 0.2
    assert "computeProposals.lua" in published.meta["mask_threshold_source"]
    # The disc at p = 0.31 is the mask: about pi * (9/28 of the window)^2.
    assert _area_of_top_proposal(published) > 500

    # The same weights as a model trained here use 0.5, which drops the faint disc.
    loaded = load_any(path)
    ours = tmp_path / "trained-here.pt"
    save_weights(ours, loaded.state_dict, loaded.config, {"dataset": "x"})
    trained = proposer_from_file(ours, device="cpu")
    assert trained.options.thresholds == (0.5,)
    assert _area_of_top_proposal(trained) == 0


def test_a_threshold_recorded_with_the_model_or_given_in_options_wins(tmp_path):
    loaded = load_any(_faint_mask_t7(tmp_path))
    path = tmp_path / "calibrated.pt"
    save_weights(path, loaded.state_dict, loaded.config, {"mask_threshold": 0.35})
    assert proposer_from_file(path, device="cpu").options.thresholds == (0.35,)
    chosen = DeepMaskOptions(thresholds=(0.4, 0.6), full_image_threshold=0.3)
    eng = proposer_from_file(path, device="cpu", options=chosen)
    assert eng.options.thresholds == (0.4, 0.6) and eng.options.full_image_threshold == 0.3


def test_outside_the_image_is_half_grey_with_an_80_px_margin():
    assert DeepMaskOptions().margin_px == 80  # InferDeepMask.lua: bw = iSz / 2
    img = np.zeros((40, 50, 3), np.uint8)
    canvas = ImagePyramid(img).scaled_view(1.0, 80, 80, 210, 208).pixels
    assert (canvas[:80] == 128).all() and (canvas[:, :80] == 128).all()
    assert (canvas[80:120, 80:130] == 0).all()
    # Normalised, the grey is the published (0.5 - mean) / std to within uint8 rounding.
    x = N.normalise(canvas[None, :1, :1])[0, :, 0, 0].numpy()
    want = (0.5 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x, want, atol=0.5 / 255 / min(IMAGENET_STD) + 1e-6)


def test_receptive_field_of_the_published_trunk():
    assert receptive_field(DeepMaskConfig()) == 267
    assert halo_px(DeepMaskConfig()) % 16 == 0 and halo_px(DeepMaskConfig()) >= 267 / 2 + 16


@pytest.mark.parametrize(
    ("cfg", "budget"),
    [
        (tiny_config(), 180 * 180),
        (tiny_config(sharpmask=True, padding="symmetric"), 320 * 320),
        (DeepMaskConfig(), 500 * 500),
    ],
    ids=["tiny", "tiny-sharpmask-symmetric", "resnet50"],
)
def test_tiled_level_equals_one_pass_over_the_whole_canvas(cfg, budget):
    torch.manual_seed(0)
    net = N.build_network(cfg).eval()
    with torch.no_grad():  # non-trivial batch norms, so that every layer matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    rng = np.random.default_rng(1)
    pyr = ImagePyramid(rng.integers(0, 255, size=(300, 420, 3), dtype=np.uint8))
    w, h = 592, 464  # the 420 x 300 image with its 80 px margin, rounded up to the stride
    (whole,) = compute_features(
        net, cfg, [pyr.scaled_view(1.0, 80, 80, w, h)], "cpu", cfg.sharpmask
    )
    tiled, passes = tiled_level(net, cfg, pyr, 1.0, 80, (w, h), "cpu", cfg.sharpmask, False, budget)
    assert passes > 1
    torch.testing.assert_close(tiled.reduced, whole.reduced, rtol=1e-4, atol=1e-4)
    if cfg.sharpmask:
        for a, b in zip(tiled.hs, whole.hs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_whole_image_mode_scores_windows_at_all_7_scales_of_a_1080p_image():
    cfg = tiny_config()
    torch.manual_seed(0)
    eng = DeepMaskProposer(N.build_network(cfg), cfg, options=DeepMaskOptions(bf16=False))
    rng = np.random.default_rng(2)
    eng.set_image(rng.integers(0, 255, size=(1080, 1920, 3), dtype=np.uint8))
    props = eng.propose_image(k=10)
    scales = [s for s, _ in eng.last_image_levels]
    assert scales == pytest.approx([2 ** (e / 2) for e in range(-5, 2)])  # 2^-2.5 .. 2^0.5
    assert all(n > 0 for _, n in eng.last_image_levels)
    # 2^0.5 of 1080p is a 4.3 Mpx canvas: more than the 1.5 Mpx budget, so it ran in tiles.
    assert eng.last_trunk_passes > 7
    # Windows at 2^0.5 are 113 px: small objects get proposals of that size.
    top = max(s for s, _ in eng.last_image_levels)
    assert top == pytest.approx(2**0.5) and 1 <= len(props) <= 10


@pytest.mark.parametrize("bn", [t7.CONST_DIAGONAL, t7.CONST_AFFINE])
def test_gpu_saved_t7_with_either_frozen_batch_norm_converts_exactly(tmp_path, bn):
    rng = np.random.default_rng(7)
    path = tmp_path / "model.t7"
    t7.write_t7(path, t7.deepmask_t7(rng, width=16, blocks=(1, 1, 2), fsz=5, oSz=28, bn=bn))
    raw = path.read_bytes()
    assert b"torch.CudaTensor" in raw and b"torch.CudaStorage" in raw
    assert b"torch.CudaLongTensor" in raw and b"torch.FloatTensor" not in raw
    assert bn.encode() in raw

    model = t7.read_reference(path)[b"model"]
    x = torch.randn(2, 3, 112, 112)
    feat = t7.run(model["trunk"], x)
    ref_mask = t7.run(t7._kids(model["maskBranch"])[0], feat).reshape(2, 28, 28)
    ref_score = t7.run(model["scoreBranch"], feat).reshape(-1)

    loaded = load_any(path)
    with torch.inference_mode():
        mask, score = N.forward_crops(build_model(loaded), loaded.config, x)
    torch.testing.assert_close(mask, ref_mask, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(score, ref_score, rtol=1e-4, atol=1e-4)


def test_gpu_saved_sharpmask_with_const_affine_converts_exactly(tmp_path):
    rng = np.random.default_rng(8)
    path = tmp_path / "sharpmask.t7"
    obj = t7.deepmask_t7(
        rng, width=16, blocks=(1, 1, 1), fsz=5, oSz=28, sharp_k=16, bn=t7.CONST_AFFINE
    )
    t7.write_t7(path, obj)
    model = t7.read_reference(path)[b"model"]
    x = torch.randn(1, 3, 112, 112)
    ref = t7.run_sharpmask(model, x)
    loaded = load_any(path)
    with torch.inference_mode():
        refined, _ = N.forward_sharpmask(build_model(loaded), loaded.config, x)
    torch.testing.assert_close(refined, ref, rtol=1e-4, atol=1e-4)


def test_precision_bench_measures_rank_agreement():
    from scubasteve.bench.deepmask_precision import spearman, top_overlap

    a = np.arange(200, dtype=np.float32)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    b = a.copy()
    b[:100], b[100:] = a[100:], a[:100]  # the best 100 become the worst 100
    assert top_overlap(a, a) == 1.0 and top_overlap(a, b) == 0.0


def test_whole_image_bench_reports_all_7_scales(capsys):
    from scubasteve.cli import main

    assert main(["bench", "deepmask-whole-image", "--tiny", "--size", "300x200", "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^  scale [0-9.]+: [0-9,]+ windows scored$", out, re.M)) == 7
    assert re.search(r"^peak RSS: \d+ MiB", out, re.M)


def test_heads_run_in_float32_on_features_of_a_bfloat16_trunk():
    from scubasteve.inference.deepmask.features import LevelFeatures, run_windows

    cfg = tiny_config()
    torch.manual_seed(3)
    net = N.build_network(cfg).eval()
    feats = torch.randn(cfg.neck_channels, 8, 8).relu()
    half = LevelFeatures(1.0, 0.0, 0.0, feats.to(torch.bfloat16))
    wide = LevelFeatures(1.0, 0.0, 0.0, feats.to(torch.bfloat16).float())
    masks, scores = run_windows(net, cfg, [(half, 0, 0), (half, 1, 2)], False)
    with torch.inference_mode():
        x = torch.stack([wide.reduced[:, 0:5, 0:5], wide.reduced[:, 1:6, 2:7]])
        emb = net["neck"][2](x)
        want_masks = N.mask_logits(net, cfg, emb).numpy()
        want_scores = N.score_logits(net, emb).numpy()
    np.testing.assert_array_equal(masks, want_masks)
    np.testing.assert_array_equal(scores, want_scores)
