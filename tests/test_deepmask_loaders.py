"""Loading published DeepMask weights: the PyTorch port's .pth.tar and the original Torch7 .t7.

Each test builds a checkpoint with the published key names / module structure and random tensors,
computes the published network's outputs with an independent reference (the port's module layout,
or a Torch7 module interpreter), converts the file and compares the outputs: a tensor in the
wrong place changes them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import deepmask_t7 as t7
from torch import nn

from scubasteve.core.errors import InputError
from scubasteve.inference.deepmask import network as N
from scubasteve.inference.deepmask.checkpoint import build_model, load_weights, save_weights
from scubasteve.inference.deepmask.config import tiny_config
from scubasteve.inference.deepmask.convert import convert_file, load_any


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads crawl when the shared CPU is busy
    yield
    torch.set_num_threads(old)


# --- the PyTorch port's layout ----------------------------------------------------------------------


class SymmetricPad(nn.Module):
    """Mirror padding that repeats the edge (the port's SymmetricPad2d), by index selection."""

    def __init__(self, p: int):
        super().__init__()
        self.p = p

    def forward(self, x):  # type: ignore[no-untyped-def]
        def idx(n: int) -> torch.Tensor:
            p = self.p
            return torch.cat(
                [torch.arange(p - 1, -1, -1), torch.arange(n), torch.arange(n - 1, n - p - 1, -1)]
            )

        x = x.index_select(3, idx(x.shape[3]))
        return x.index_select(2, idx(x.shape[2]))


class Reshape(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x):  # type: ignore[no-untyped-def]
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.size, self.size)


def _wrap_padded_convs(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if (
            isinstance(child, nn.Conv2d)
            and child.kernel_size in ((3, 3), (7, 7))
            and child.padding[0]
        ):
            p = child.padding[0]
            bare = nn.Conv2d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                child.stride,
                0,
                bias=child.bias is not None,
            )
            bare.weight = child.weight
            setattr(
                module,
                name,
                nn.Sequential(SymmetricPad(p) if p > 1 else nn.ReflectionPad2d(p), bare),
            )
        else:
            _wrap_padded_convs(child)


def port_model(width: int, blocks: tuple[int, int, int], fsz: int, osz: int) -> nn.Module:
    """The port's DeepMask module tree (trunk, maskBranch, scoreBranch) with random tensors."""
    from torchvision.models.resnet import Bottleneck, ResNet

    r = ResNet(Bottleneck, [*blocks, 1]) if width == 64 else None
    if r is None:
        cfg = tiny_config(trunk_width=width, trunk_blocks=blocks)
        trunk1 = N.build_network(cfg)["trunk"]
        trunk1[0].padding = (3, 3)
    else:
        trunk1 = nn.Sequential(*list(r.children())[:-3])
    _wrap_padded_convs(trunk1)
    m = nn.Module()
    m.trunk = nn.Sequential(
        trunk1, nn.Sequential(nn.Conv2d(16 * width, 128, 1), nn.ReLU(), nn.Conv2d(128, 512, fsz))
    )
    m.maskBranch = nn.Sequential(
        nn.Sequential(nn.Conv2d(512, osz * osz, 1), Reshape(osz)),
        nn.UpsamplingBilinear2d(size=2 * osz),
    )
    m.scoreBranch = nn.Sequential(
        nn.Dropout(0.5),
        nn.Conv2d(512, 1024, 1),
        nn.Threshold(0, 1e-6),
        nn.Dropout(0.5),
        nn.Conv2d(1024, 1, 1),
    )
    m.crop_trick = nn.ZeroPad2d(-1)  # the port crops the context cell after its whole trunk
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m.eval()


def port_checkpoint(tmp_path, width=64, blocks=(3, 4, 6), fsz=10, osz=56):  # type: ignore[no-untyped-def]
    model = port_model(width, blocks, fsz, osz)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "DeepMask.pth.tar"
    # As the port's training script saved it (a numpy best accuracy is plain data, allowed).
    torch.save(
        {"epoch": 12, "arch": "DeepMask", "state_dict": state, "best_acc": np.float64(0.61)}, path
    )
    return model, path, state


@pytest.mark.slow
def test_port_checkpoint_has_the_published_key_names(tmp_path):
    _, _, state = port_checkpoint(tmp_path)
    for key, shape in {
        "module.trunk.0.0.1.weight": (64, 3, 7, 7),
        "module.trunk.0.4.0.conv2.1.weight": (64, 64, 3, 3),
        "module.trunk.1.0.weight": (128, 1024, 1, 1),
        "module.trunk.1.2.weight": (512, 128, 10, 10),
        "module.maskBranch.0.0.weight": (3136, 512, 1, 1),
        "module.scoreBranch.1.weight": (1024, 512, 1, 1),
        "module.scoreBranch.4.weight": (1, 1024, 1, 1),
    }.items():
        assert tuple(state[key].shape) == shape


@pytest.mark.slow
def test_port_pth_tar_converts_to_the_same_outputs(tmp_path):
    model, path, _ = port_checkpoint(tmp_path)
    x = torch.randn(2, 3, 192, 192)
    with torch.inference_mode():
        feat = model.crop_trick(model.trunk(x))
        ref_mask = model.maskBranch[0](feat)[:, 0]
        ref_score = model.scoreBranch(feat).reshape(-1)
    loaded = load_any(path)
    assert loaded.config.padding == "reflect" and loaded.config.input_size == 192
    assert loaded.config.trunk_blocks == (3, 4, 6) and loaded.config.mask_size == 56
    net = build_model(loaded)
    with torch.inference_mode():
        mask, score = N.forward_crops(net, loaded.config, x)
    torch.testing.assert_close(mask, ref_mask, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(score, ref_score, rtol=1e-4, atol=1e-4)

    # ... and our own format keeps them.
    ours = convert_file(path, tmp_path / "ours.pt")
    again = load_weights(ours)
    assert again.meta["source_format"] == "pth-port"
    with torch.inference_mode():
        mask2, _ = N.forward_crops(build_model(again), again.config, x)
    torch.testing.assert_close(mask2, ref_mask, rtol=1e-4, atol=1e-4)


def test_small_port_checkpoint_converts_to_the_same_outputs(tmp_path):
    model, path, _ = port_checkpoint(tmp_path, width=16, blocks=(1, 2, 1), fsz=5, osz=28)
    x = torch.randn(3, 3, 112, 112)
    with torch.inference_mode():
        feat = model.crop_trick(model.trunk(x))
        ref_mask, ref_score = model.maskBranch[0](feat)[:, 0], model.scoreBranch(feat).reshape(-1)
        loaded = load_any(path)
        mask, score = N.forward_crops(build_model(loaded), loaded.config, x)
    assert loaded.config.trunk_blocks == (1, 2, 1) and loaded.config.window == 80
    torch.testing.assert_close(mask, ref_mask, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(score, ref_score, rtol=1e-4, atol=1e-4)


# --- the Torch7 originals ---------------------------------------------------------------------------


@pytest.mark.slow
def test_torch7_deepmask_converts_to_the_same_outputs(tmp_path):

    rng = np.random.default_rng(0)
    path = tmp_path / "model.t7"
    t7.write_t7(path, t7.deepmask_t7(rng))
    model = t7.read_reference(path)[b"model"]
    x = torch.randn(2, 3, 192, 192)
    feat = t7.run(model["trunk"], x)
    ref_mask = t7.run(t7._kids(model["maskBranch"])[0], feat).reshape(2, 56, 56)
    ref_score = t7.run(model["scoreBranch"], feat).reshape(-1)

    loaded = load_any(path)
    assert loaded.source == "t7" and loaded.config.padding == "symmetric"
    assert loaded.config.trunk_blocks == (3, 4, 6) and not loaded.config.sharpmask
    with torch.inference_mode():
        mask, score = N.forward_crops(build_model(loaded), loaded.config, x)
    torch.testing.assert_close(mask, ref_mask, rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(score, ref_score, rtol=1e-4, atol=2e-4)


def test_torch7_sharpmask_converts_to_the_same_outputs(tmp_path):

    rng = np.random.default_rng(1)
    path = tmp_path / "sharpmask.t7"
    t7.write_t7(path, t7.deepmask_t7(rng, width=16, blocks=(1, 1, 2), fsz=5, oSz=28, sharp_k=16))
    model = t7.read_reference(path)[b"model"]
    x = torch.randn(2, 3, 112, 112)
    ref_refined = t7.run_sharpmask(model, x)
    feat = t7.run(model["trunk"], x)
    ref_mask = t7.run(t7._kids(model["maskBranchDM"])[0], feat).reshape(2, 28, 28)

    loaded = load_any(path)
    cfg = loaded.config
    assert (
        cfg.sharpmask and cfg.km == cfg.ks == 16 and cfg.window == 80 and cfg.padding == "symmetric"
    )
    net = build_model(loaded)
    with torch.inference_mode():
        refined, _ = N.forward_sharpmask(net, cfg, x)
        mask, _ = N.forward_crops(net, cfg, x)
    assert refined.shape == (2, 80, 80)
    torch.testing.assert_close(refined, ref_refined, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mask, ref_mask, rtol=1e-4, atol=1e-4)


def test_torch7_resnet_gives_a_trunk_only(tmp_path):
    rng = np.random.default_rng(2)
    mods = t7.resnet_trunk(rng, 16, (1, 1, 1, 1))
    mods += [t7.T7Object("nn.SpatialAveragePooling", {}), t7.linear(rng, 1024, 10)]
    path = tmp_path / "resnet-50.t7"
    t7.write_t7(path, t7.seq(*mods))
    loaded = load_any(path)
    assert loaded.meta["trunk_only"] and all(k.startswith("trunk.") for k in loaded.state_dict)
    x = torch.randn(1, 3, 64, 64)

    ref = x
    for mod in t7._kids(t7.read_reference(path))[:7]:
        ref = t7.run(mod, ref)
    net = N.build_network(loaded.config).eval()
    net.load_state_dict(loaded.state_dict, strict=False)
    with torch.inference_mode():
        ours, _ = N.run_trunk(net, loaded.config, x)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


# --- bad input --------------------------------------------------------------------------------------


def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path):
    _, path, _ = port_checkpoint(tmp_path, width=16, blocks=(1, 1, 1), fsz=5, osz=28)
    cut = tmp_path / "cut.pth.tar"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or damaged") as err:
        load_any(cut)
    assert "cut.pth.tar" in str(err.value)


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "classifier.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}}, path)
    with pytest.raises(InputError, match="not of DeepMask") as err:
        load_any(path)
    assert "classifier.pth" in str(err.value)


def test_t7_of_another_network_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "vgg.t7"
    t7.write_t7(
        path,
        t7.seq(
            t7.conv(rng, 3, 8, 3, pad=1),
            t7.relu(),
            t7.conv(rng, 8, 8, 3, pad=1),
            t7.linear(rng, 8, 2),
        ),
    )
    with pytest.raises(InputError, match="not a DeepMask/SharpMask/ResNet-50 model") as err:
        load_any(path)
    assert "vgg.t7" in str(err.value)


def test_truncated_t7_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "model.t7"
    t7.write_t7(path, t7.deepmask_t7(rng, width=16, blocks=(1, 1, 1), fsz=5, oSz=28))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError, match="Torch7") as err:
        load_any(path)
    assert "model.t7" in str(err.value)


def test_random_bytes_and_empty_files_are_refused(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x11" * 100)
    with pytest.raises(InputError, match="not a DeepMask weights file"):
        load_any(junk)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_any(empty)


def test_our_format_refuses_weights_that_do_not_match_their_checksum(tmp_path):
    cfg = tiny_config()
    net = N.build_network(cfg)
    path = save_weights(tmp_path / "m.pt", net.state_dict(), cfg, {"note": "test"})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["mask_head.bias"] += 1.0  # a damaged tensor, checksum kept
    torch.save(payload, path)
    with pytest.raises(InputError, match="checksum"):
        load_weights(path)


def test_our_format_round_trips_config_meta_and_outputs(tmp_path):
    cfg = tiny_config(sharpmask=True)
    net = N.build_network(cfg).eval()
    path = save_weights(tmp_path / "m.pt", net.state_dict(), cfg, {"epochs": 3})
    loaded = load_weights(path)
    assert loaded.config == cfg and loaded.meta == {"epochs": 3}
    x = torch.randn(1, 3, 112, 112)
    with torch.inference_mode():
        a, _ = N.forward_sharpmask(net, cfg, x)
        b, _ = N.forward_sharpmask(build_model(loaded), cfg, x)
    torch.testing.assert_close(a, b)


def test_engine_loads_a_t7_file_directly_and_caches_the_conversion(tmp_path):
    from scubasteve.core.paths import cache_dir
    from scubasteve.inference.deepmask import proposer_from_file

    rng = np.random.default_rng(3)
    path = tmp_path / "model.t7"
    t7.write_t7(path, t7.deepmask_t7(rng, width=16, blocks=(1, 1, 1), fsz=5, oSz=28))
    first = proposer_from_file(path, device="cpu")
    cached = list((cache_dir() / "deepmask-converted").glob("*.pt"))
    assert len(cached) == 1
    second = proposer_from_file(path, device="cpu")
    assert first.config == second.config and first.config.padding == "symmetric"
    for key, value in first.net.state_dict().items():
        torch.testing.assert_close(second.net.state_dict()[key], value)


def test_torchvision_resnet_state_dict_gives_a_trunk_for_training(tmp_path):
    from torchvision.models.resnet import Bottleneck, ResNet

    r = ResNet(Bottleneck, [1, 2, 1, 1]).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(r.state_dict(), path)
    loaded = load_any(path)
    assert loaded.meta["trunk_only"] and loaded.config.trunk_blocks == (1, 2, 1)
    net = N.build_network(loaded.config).eval()
    net.load_state_dict(loaded.state_dict, strict=False)
    x = torch.randn(1, 3, 96, 96)
    with torch.inference_mode():
        ref = r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x)))))))
        ours, _ = N.run_trunk(net, loaded.config, x)
    torch.testing.assert_close(ours, ref)
