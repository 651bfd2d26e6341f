"""DeepMask engine: forward-pass shapes, mapping masks back to the image, ranking and bad input.

Mapping is checked with hand-set weights: the mask head ignores the features (weight 0) and its
bias draws a known pattern over the window, so the mask the engine returns must be that pattern
mapped through the window's exact image geometry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.geometry import Box, mask_iou
from scubasteve.inference.base import MaskProposer, PromptPoint
from scubasteve.inference.deepmask import network as N
from scubasteve.inference.deepmask.config import DeepMaskConfig, tiny_config
from scubasteve.inference.deepmask.proposer import DeepMaskOptions, DeepMaskProposer


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads crawl when the shared CPU is busy
    yield
    torch.set_num_threads(old)


def disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Pixels whose centres lie within r of (cx, cy) (pixel-corner coordinates)."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def pattern_net(cfg: DeepMaskConfig, pattern: np.ndarray, score: float = 0.0, seed: int = 0):
    """A random network whose mask head always outputs `pattern` (m x m bool) as +-8 logits."""
    torch.manual_seed(seed)
    net = N.build_network(cfg).eval()
    with torch.no_grad():
        net["mask_head"].weight.zero_()
        net["mask_head"].bias.copy_(torch.from_numpy(np.where(pattern, 8.0, -8.0).reshape(-1)))
        net["score_head"][4].weight.zero_()
        net["score_head"][4].bias.fill_(score)
    return net


def object_disc_pattern(cfg: DeepMaskConfig) -> np.ndarray:
    """The disc a trained network would draw for a centred object: diameter object_fraction x window."""
    m = cfg.mask_size
    return disc(m, m, m / 2, m / 2, m * cfg.object_fraction / 2)


def synthetic_image(h: int, w: int, obj: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(30, 90, size=(h, w, 3), dtype=np.uint8)
    img[obj] = (230, 200, 40)
    return img


def test_full_size_forward_pass_gives_56px_masks_and_one_score_per_crop():
    cfg = DeepMaskConfig()
    net = N.build_network(cfg).eval()
    x = torch.randn(2, 3, 192, 192)
    with torch.inference_mode():
        masks, scores = N.forward_crops(net, cfg, x)
        feats, skips = N.run_trunk(net, cfg, x, skips=True)
    assert masks.shape == (2, 56, 56) and scores.shape == (2,)
    assert feats.shape == (2, 1024, 12, 12)
    assert [s.shape[1:] for s in skips] == [(512, 24, 24), (256, 48, 48), (64, 96, 96)]
    assert torch.isfinite(masks).all() and torch.isfinite(scores).all()


def test_sharpmask_forward_pass_gives_window_sized_masks():
    cfg = tiny_config(sharpmask=True, padding="symmetric")
    net = N.build_network(cfg).eval()
    with torch.inference_mode():
        masks, scores = N.forward_sharpmask(net, cfg, torch.randn(3, 3, 112, 112))
    assert masks.shape == (3, 80, 80) and scores.shape == (3,)


def test_deepmask_proposer_satisfies_the_protocol():
    cfg = tiny_config()
    assert isinstance(DeepMaskProposer(N.build_network(cfg), cfg), MaskProposer)


def test_mask_maps_back_onto_a_known_object_on_a_cached_level():
    cfg = tiny_config()
    # Object diameter = the network's object size, so the ideal scale is exactly level 0 (1.0);
    # centre at 72 puts a window exactly on it (canvas margin 64: 72 + 64 - 40 = 96 = 6 cells).
    d = cfg.object_size
    obj = disc(200, 240, 72, 72, d / 2)
    img = synthetic_image(200, 240, obj)
    eng = DeepMaskProposer(
        pattern_net(cfg, object_disc_pattern(cfg)),
        cfg,
        options=DeepMaskOptions(scale_steps=(0,), shift_cells=0),
    )
    eng.set_image(img)
    assert 1.0 in eng.last_set_image.levels
    props = eng.propose(Box(72 - d / 2, 72 - d / 2, 72 + d / 2, 72 + d / 2), k=10)
    assert len(props) == 1
    got = props[0].full_mask(200, 240)
    assert props[0].extras["window_size"] == pytest.approx(cfg.window)
    assert mask_iou(got, obj) > 0.93


def test_mask_maps_back_exactly_through_a_local_canvas_at_any_position_and_scale():
    cfg = tiny_config()
    h, w, cx, cy, r = 300, 260, 151.3, 97.8, 31.0
    obj = disc(h, w, cx, cy, r)
    eng = DeepMaskProposer(
        pattern_net(cfg, object_disc_pattern(cfg)),
        cfg,
        options=DeepMaskOptions(precompute=False, scale_steps=(0,), shift_cells=0),
    )
    eng.set_image(synthetic_image(h, w, obj))
    (prop,) = eng.propose(Box(cx - r, cy - r, cx + r, cy + r))
    x0, y0, side = (prop.extras[k] for k in ("window_x0", "window_y0", "window_size"))
    # The local canvas centres the window on the box; the level rounds the scale (quarter octave).
    assert x0 + side / 2 == pytest.approx(cx, abs=1e-6)
    assert y0 + side / 2 == pytest.approx(cy, abs=1e-6)
    expected = disc(h, w, cx, cy, side * cfg.object_fraction / 2)
    assert mask_iou(prop.full_mask(h, w), expected) > 0.95
    assert abs(math.log2(side * cfg.object_fraction / (2 * r))) <= 0.26


def test_mask_orientation_is_preserved():
    cfg = tiny_config()
    m = cfg.mask_size
    top_left = np.zeros((m, m), dtype=bool)
    top_left[m // 4 : m // 2, m // 4 : m // 2] = True  # the top-left quarter of the object area
    eng = DeepMaskProposer(
        pattern_net(cfg, top_left),
        cfg,
        options=DeepMaskOptions(precompute=False, scale_steps=(0,), shift_cells=0, box_margin=0.5),
    )
    eng.set_image(np.full((240, 240, 3), 90, np.uint8))
    (prop,) = eng.propose(Box(80, 100, 140, 160))
    ys, xs = np.nonzero(prop.full_mask(240, 240))
    assert xs.mean() + 0.5 < 110 and ys.mean() + 0.5 < 130  # up-left of the box centre (110, 130)
    x0, y0, side = (prop.extras[k] for k in ("window_x0", "window_y0", "window_size"))
    assert xs.min() == pytest.approx(x0 + side / 4, abs=1.5)
    assert ys.max() + 1 == pytest.approx(y0 + side / 2, abs=1.5)


def test_sharpmask_output_covers_its_whole_window_when_set_to_object_everywhere():
    cfg = tiny_config(sharpmask=True)
    torch.manual_seed(0)
    net = N.build_network(cfg).eval()
    with torch.no_grad():
        net["refine"]["final"].weight.zero_()
        net["refine"]["final"].bias.fill_(5.0)
    eng = DeepMaskProposer(
        net,
        cfg,
        options=DeepMaskOptions(precompute=False, scale_steps=(0,), shift_cells=0, box_margin=2.0),
    )
    eng.set_image(np.full((300, 300, 3), 120, np.uint8))
    (prop,) = eng.propose(Box(120, 130, 160, 170))
    assert prop.source.startswith("deepmask:sharp")
    x0, y0, side = (prop.extras[k] for k in ("window_x0", "window_y0", "window_size"))
    window = np.zeros((300, 300), bool)
    window[round(y0) : round(y0 + side), round(x0) : round(x0 + side)] = True
    assert mask_iou(prop.full_mask(300, 300), window) > 0.95


@pytest.fixture(scope="module")
def random_engine():
    cfg = tiny_config()
    torch.manual_seed(1)
    eng = DeepMaskProposer(N.build_network(cfg), cfg)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, size=(180, 220, 3), dtype=np.uint8)
    img[60:130, 50:150] = (250, 30, 30)
    eng.set_image(img)
    return eng


def test_random_weights_give_valid_distinct_sorted_proposals(random_engine):
    props = random_engine.propose(Box(40, 50, 160, 140), k=10)
    assert 1 <= len(props) <= 10
    scores = [p.score for p in props]
    assert scores == sorted(scores, reverse=True)
    full = [p.full_mask(180, 220) for p in props]
    for p, m in zip(props, full, strict=True):
        assert p.patch.mask.dtype == bool and p.area > 0
        assert p.patch.x >= 0 and p.patch.y >= 0
        assert p.patch.x + p.patch.width <= 220 and p.patch.y + p.patch.height <= 180
        assert m.sum() == p.area
    for i in range(len(full)):
        for j in range(i):
            assert mask_iou(full[i], full[j]) <= 0.9


def test_first_proposal_is_delivered_through_the_callback(random_engine):
    seen = []
    props = random_engine.propose(Box(40, 50, 160, 140), k=3, on_proposal=seen.append)
    assert seen == props


def test_cancelled_request_raises_cancelled(random_engine):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        random_engine.propose(Box(40, 50, 160, 140), cancel=token)


def test_negative_point_demotes_masks_that_cover_it():
    cfg = tiny_config()
    eng = DeepMaskProposer(
        pattern_net(cfg, object_disc_pattern(cfg)), cfg, options=DeepMaskOptions(precompute=False)
    )
    eng.set_image(np.full((200, 200, 3), 100, np.uint8))
    box = Box(70, 70, 120, 120)
    plain = eng.propose(box, k=10)
    # A point covered by the best mask but not by every candidate.
    best = plain[0].full_mask(200, 200)
    ys, xs = np.nonzero(best)
    covered_by_all = np.logical_and.reduce([p.full_mask(200, 200) for p in plain])
    spots = [(x, y) for x, y in zip(xs, ys, strict=True) if not covered_by_all[y, x]]
    x, y = spots[len(spots) // 2]
    corrected = eng.propose(box, k=10, points=[PromptPoint(x + 0.5, y + 0.5, positive=False)])
    assert not corrected[0].full_mask(200, 200)[y, x]


def test_positive_point_promotes_masks_that_cover_it():
    cfg = tiny_config()
    eng = DeepMaskProposer(
        pattern_net(cfg, object_disc_pattern(cfg)), cfg, options=DeepMaskOptions(precompute=False)
    )
    eng.set_image(np.full((200, 200, 3), 100, np.uint8))
    box = Box(70, 70, 120, 120)
    plain = eng.propose(box, k=10)
    first = plain[0].full_mask(200, 200)
    others = [p.full_mask(200, 200) for p in plain[1:]]
    spot = next(np.argwhere(o & ~first)[0] for o in others if (o & ~first).any())
    y, x = int(spot[0]), int(spot[1])
    corrected = eng.propose(box, k=10, points=[PromptPoint(x + 0.5, y + 0.5, positive=True)])
    assert corrected[0].full_mask(200, 200)[y, x]


@pytest.mark.parametrize(
    "image",
    [
        np.full((1, 1, 3), 7, np.uint8),
        np.full((40, 30), 200, np.uint8),
        np.full((40, 30, 4), 200, np.uint8),
        np.zeros((3, 900, 3), np.uint8),
    ],
    ids=["1x1", "grey", "rgba", "thin-strip"],
)
def test_odd_images_give_a_defined_result(image):
    cfg = tiny_config()
    eng = DeepMaskProposer(N.build_network(cfg), cfg)
    eng.set_image(image)
    h, w = image.shape[:2]
    props = eng.propose(Box(0, 0, w, h), k=10)
    for p in props:
        assert p.full_mask(h, w).sum() == p.area


def test_box_outside_the_image_is_refused(random_engine):
    with pytest.raises(ValueError, match="less than one pixel"):
        random_engine.propose(Box(500, 500, 600, 600))


def test_propose_before_set_image_is_an_error():
    cfg = tiny_config()
    with pytest.raises(RuntimeError, match="set_image"):
        DeepMaskProposer(N.build_network(cfg), cfg).propose(Box(0, 0, 5, 5))


def test_full_image_proposals_are_ranked_object_masks_inside_the_image():
    cfg = tiny_config()
    eng = DeepMaskProposer(pattern_net(cfg, object_disc_pattern(cfg)), cfg)
    rng = np.random.default_rng(0)
    eng.set_image(rng.integers(0, 255, size=(120, 150, 3), dtype=np.uint8))
    props = eng.propose_image(k=20)
    assert 1 <= len(props) <= 20
    assert [p.score for p in props] == sorted((p.score for p in props), reverse=True)
    for p in props:
        assert p.full_mask(120, 150).sum() == p.area > 0


def test_levels_thinner_than_a_window_still_serve_whole_windows():
    cfg = tiny_config()
    # A small grey margin makes the thin strip's canvases shorter than one window unless padded.
    eng = DeepMaskProposer(N.build_network(cfg), cfg, options=DeepMaskOptions(margin_px=16))
    eng.set_image(np.full((20, 1500, 3), 90, np.uint8))
    assert all(lf.rows >= cfg.fsz and lf.cols >= cfg.fsz for lf in eng._levels.values())
    props = eng.propose(Box(0, 0, 1500, 20))
    assert all(p.full_mask(20, 1500).sum() == p.area for p in props)


def test_cancelled_set_image_leaves_no_half_image():
    cfg = tiny_config()
    eng = DeepMaskProposer(N.build_network(cfg), cfg)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        eng.set_image(np.zeros((100, 100, 3), np.uint8), cancel=token)
    with pytest.raises(RuntimeError, match="set_image"):
        eng.propose(Box(0, 0, 10, 10))
