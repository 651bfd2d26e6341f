"""IS-Net weight files: the layout, every format the reader takes, refusals, and installing them.

Files are built here from thin random networks of the published layout (tests/helpers/isnet.py);
the published files in ../shared/models are tested where present (CI has them): the network
written here is held to ONNX Runtime running the fp16 file itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.isnet import thin_state, write_dis_pth, write_int8_onnx, write_onnx, write_ours

from scubasteve import weights
from scubasteve.core.errors import InputError
from scubasteve.inference.isnet.network import build_isnet, forward
from scubasteve.inference.isnet.weights import build_model
from scubasteve.weights.isnet_file import (
    expected_shapes,
    is_isnet_checkpoint,
    read_weights,
    weights_file_problem,
)

SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
FP16 = SHARED_MODELS / "isnet-general-use-fp16.onnx"
INT8 = SHARED_MODELS / "isnet-general-use-int8.onnx"


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert set(a) == set(b)
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=atol), key


@pytest.mark.parametrize("divisor", [1, 16])
def test_the_network_is_built_from_the_layout_the_files_are_checked_against(divisor):
    net = build_isnet(divisor)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == expected_shapes(divisor)
    assert "stage1.rebnconvin.conv_s1.weight" in shapes and "side6.bias" in shapes


def test_the_network_takes_any_input_size():
    net = build_isnet(16).eval()
    with torch.inference_mode():
        outs = forward(net, torch.rand(1, 3, 100, 130), sides=(1, 6))
    assert [tuple(o.shape) for o in outs] == [(1, 1, 100, 130)] * 2


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_float_onnx_files_are_read_by_module_path(tmp_path, dtype):
    state = thin_state()
    w = read_weights(write_onnx(tmp_path / "isnet.onnx", state, dtype))
    assert w.divisor == 16 and w.meta["source"] == f"onnx-{dtype}"
    _same(w.state_dict, state, atol=2e-3 if dtype == "float16" else 0.0)


def test_int8_onnx_files_are_dequantised(tmp_path):
    path, expected = write_int8_onnx(tmp_path / "isnet-int8.onnx", thin_state())
    w = read_weights(path)
    assert w.meta["source"] == "onnx-int8"
    _same(w.state_dict, expected, atol=1e-6)


def test_dis_pth_batch_norm_is_folded_into_the_convolutions(tmp_path):
    state = thin_state()
    w = read_weights(write_dis_pth(tmp_path / "isnet.pth", state))
    assert w.meta["source"] == "dis-pth"
    _same(w.state_dict, state, atol=1e-5)


def test_our_own_files_round_trip_and_are_recognised_cheaply(tmp_path):
    state = thin_state(divisor=8)
    path = write_ours(tmp_path / "mine.pt", state, divisor=8)
    assert is_isnet_checkpoint(path)
    w = read_weights(path)
    assert w.divisor == 8
    _same(w.state_dict, state, atol=0.0)
    net = build_model(w)
    assert sum(p.numel() for p in net.parameters()) == sum(v.numel() for v in state.values())


def test_a_damaged_checkpoint_is_refused_by_its_digest(tmp_path):
    import zipfile

    path = write_ours(tmp_path / "mine.pt", thin_state(), divisor=16)
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if "/data/" in item.filename and len(data) > 16:
                data = data[:8] + bytes(8) + data[16:]  # a few zeroed bytes in one tensor
            dst.writestr(item, data)
    with pytest.raises(InputError, match="checksum"):
        read_weights(damaged)


def _sam_like(path: Path) -> Path:
    torch.save({"model": {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(2)}}, path)
    return path


def _other_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="/backbone/conv1/Conv")
    graph = helper.make_graph(
        [node],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("<!DOCTYPE html><html>Not Found</html>"), "web page"),
        (lambda p: p.write_bytes(b"\x08\x07" + bytes(range(256)) * 4), "cannot read it as an ONNX"),
        (_sam_like, "not IS-Net weights"),
        (_other_onnx, "not IS-Net weights"),
        (lambda p: p.write_bytes(b"GIF89a" + bytes(100)), "cannot read it as an ONNX model"),
    ],
    ids=["empty", "html", "damaged-onnx", "sam-checkpoint", "other-onnx", "gif"],
)
def test_files_that_are_not_isnet_are_refused_with_the_reason(tmp_path, make, says):
    path = tmp_path / "weights.onnx"
    make(path)
    with pytest.raises(InputError, match=says) as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_a_truncated_onnx_file_is_refused(tmp_path):
    good = write_onnx(tmp_path / "good.onnx", thin_state())
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError):
        read_weights(cut)


def test_models_import_installs_isnet_files_and_refuses_others(tmp_path):
    from scubasteve.cli import main
    from scubasteve.inference.engines import ensemble_plan

    thin = write_onnx(tmp_path / "thin.onnx", thin_state())
    # the published name takes only the full network; a thin one installs under its own name
    assert "thinner" in (weights_file_problem(thin) or "")
    assert main(["models", "import", "isnet-general-use", str(thin)]) != 0
    assert weights.installed_path("isnet-general-use") is None
    html = tmp_path / "page.onnx"
    html.write_text("<html>error</html>")
    assert main(["models", "import", "mine", str(html), "--kind", "isnet"]) != 0
    assert main(["models", "import", "mine", str(thin), "--kind", "isnet"]) == 0
    assert ensemble_plan().learned == "isnet"


@pytest.mark.skipif(not FP16.is_file(), reason="../shared/models is not present")
def test_the_published_fp16_file_imports_as_the_published_model():
    path = weights.import_file("isnet-general-use", FP16)
    assert path.name == "isnet-general-use.onnx"
    status = weights.model_status("isnet-general-use")
    assert status is not None and status.installed


@pytest.mark.slow
@pytest.mark.skipif(not FP16.is_file(), reason="../shared/models is not present")
def test_the_network_written_here_matches_onnx_runtime_on_the_fp16_file():
    """Same input (a real photo at the graph's fixed 1024 px), same output within fp16 noise."""
    ort = pytest.importorskip("onnxruntime")
    from scubasteve.inference.isnet.crops import Window, extract
    from scubasteve.io.images import load_image

    image = load_image(Path(__file__).parent.parent / "resources" / "selftest" / "scene.png")
    x = extract(image, Window(0, 0, image.shape[1], image.shape[0]), 1024)
    batch = np.ascontiguousarray(x.transpose(2, 0, 1))[None]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(FP16), options, providers=["CPUExecutionProvider"])
    expected = session.run(["output"], {"input": batch})[0][0, 0]
    net = build_model(read_weights(FP16))
    with torch.inference_mode():
        got = torch.sigmoid(forward(net, torch.from_numpy(batch))[0])[0, 0].numpy()
    # measured: max 5.5e-4 on a DAVIS frame (float32 here against ONNX Runtime's float16)
    assert np.abs(got - expected).max() < 5e-3
    assert np.mean((got > 0.5) != (expected > 0.5)) < 1e-4


@pytest.mark.slow
@pytest.mark.skipif(not INT8.is_file(), reason="../shared/models is not present")
def test_the_dequantised_int8_file_agrees_with_the_fp16_file():
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) - 0.5
    with torch.inference_mode():
        a = torch.sigmoid(forward(build_model(read_weights(FP16)), x)[0])
        b = torch.sigmoid(forward(build_model(read_weights(INT8)), x)[0])
    assert float((a - b).abs().max()) < 0.05
    assert float(((a > 0.5) != (b > 0.5)).float().mean()) < 1e-3
