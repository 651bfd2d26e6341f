"""IS-Net weight files built in the tests: thin random networks in every layout the reader takes.

The layout is the published one (`conv_layout`) with channels divided by `divisor`, so files stay
small; the ONNX files hold exactly what the reader walks (named ``Conv`` / ``ConvInteger`` nodes
and their tensors), as the published exports do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from scubasteve.weights.isnet_file import BN_EPS, conv_layout, save_weights


def thin_state(divisor: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random folded state dict of the thin network (what `build_isnet(divisor)` holds)."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for conv in conv_layout(divisor):
        fan_in = conv.cin * 9
        state[f"{conv.path}.weight"] = (
            torch.randn(conv.cout, conv.cin, 3, 3, generator=gen) * (2.0 / fan_in) ** 0.5
        )
        state[f"{conv.path}.bias"] = torch.randn(conv.cout, generator=gen) * 0.05
    return state


def _node_name(path: str, suffix: str) -> str:
    return "/" + path.replace(".", "/") + "/" + suffix


def write_onnx(path: Path, state: dict[str, torch.Tensor], dtype: str = "float16") -> Path:
    """A float ONNX model of `state`: one named Conv node per layer, weights as initializers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    np_type = np.float16 if dtype == "float16" else np.float32
    nodes, inits = [], []
    previous = "input"
    for i, conv in enumerate(conv_layout(int(64 // state["conv_in.weight"].shape[0]))):
        w_name = f"{conv.path}.weight" if i % 2 else f"onnx::Conv_{1000 + 2 * i}"
        b_name = f"{conv.path}.bias" if i % 2 else f"onnx::Conv_{1001 + 2 * i}"
        inits.append(
            numpy_helper.from_array(state[f"{conv.path}.weight"].numpy().astype(np_type), w_name)
        )
        inits.append(
            numpy_helper.from_array(state[f"{conv.path}.bias"].numpy().astype(np_type), b_name)
        )
        out = _node_name(conv.path, "Conv_output_0")
        nodes.append(
            helper.make_node(
                "Conv",
                [previous, w_name, b_name],
                [out],
                name=_node_name(conv.path, "Conv"),
                dilations=[conv.dilation] * 2,
                pads=[conv.dilation] * 4,
                strides=[conv.stride] * 2,
                kernel_shape=[3, 3],
            )
        )
        previous = out
    graph = helper.make_graph(
        nodes,
        "isnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, None)],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph, producer_name="pytorch"), str(path))
    return path


def write_int8_onnx(
    path: Path, state: dict[str, torch.Tensor]
) -> tuple[Path, dict[str, torch.Tensor]]:
    """A dynamically quantised ONNX model of `state` (ConvInteger with uint8 weights) and the
    dequantised state the reader must return."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    expected: dict[str, torch.Tensor] = {}
    previous = "input"
    for i, conv in enumerate(conv_layout(int(64 // state["conv_in.weight"].shape[0]))):
        base = f"onnx::Conv_{1000 + 2 * i}"
        w = state[f"{conv.path}.weight"].numpy()
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
        scale = np.float32((hi - lo) / 255.0 or 1.0)
        zero = np.uint8(round(-lo / scale))
        q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
        expected[f"{conv.path}.weight"] = torch.from_numpy((q.astype(np.float32) - zero) * scale)
        expected[f"{conv.path}.bias"] = state[f"{conv.path}.bias"].clone()
        inits += [
            numpy_helper.from_array(q, base + "_quantized"),
            numpy_helper.from_array(np.array(zero, np.uint8), base + "_zero_point"),
            numpy_helper.from_array(np.array(scale, np.float32), base + "_scale"),
            numpy_helper.from_array(state[f"{conv.path}.bias"].numpy(), f"{base}_bias"),
            numpy_helper.from_array(np.array([1, -1, 1, 1], np.int64), f"{base}_shape"),
        ]
        out = _node_name(conv.path, "Conv_output_0")
        nodes.append(
            helper.make_node(
                "ConvInteger",
                [
                    previous + "_quantized",
                    base + "_quantized",
                    previous + "_zero_point",
                    base + "_zero_point",
                ],
                [out + "_output_quantized"],
                name=_node_name(conv.path, "Conv_quant"),
            )
        )
        nodes.append(
            helper.make_node(
                "Reshape", [f"{base}_bias", f"{base}_shape"], [out + "_bias_reshape_output"]
            )
        )
        previous = out
    graph = helper.make_graph(
        nodes,
        "isnet-int8",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, None)],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph), str(path))
    return path, expected


def write_dis_pth(path: Path, state: dict[str, torch.Tensor], seed: int = 1) -> Path:
    """DIS's own layout of `state`: each REBNCONV's conv plus a batch norm with random statistics
    chosen so that folding them gives `state` back."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".conv_s1." not in key:
            out[key] = value.clone()
            continue
        if not key.endswith(".weight"):
            continue
        prefix = key[: -len(".conv_s1.weight")]
        n = value.shape[0]
        gamma = torch.rand(n, generator=gen) + 0.5
        beta = torch.randn(n, generator=gen) * 0.1
        mean = torch.randn(n, generator=gen) * 0.1
        var = torch.rand(n, generator=gen) + 0.5
        scale = gamma / torch.sqrt(var + BN_EPS)
        out[key] = value / scale.view(-1, 1, 1, 1)
        out[f"{prefix}.conv_s1.bias"] = (state[f"{prefix}.conv_s1.bias"] - beta) / scale + mean
        out[f"{prefix}.bn_s1.weight"] = gamma
        out[f"{prefix}.bn_s1.bias"] = beta
        out[f"{prefix}.bn_s1.running_mean"] = mean
        out[f"{prefix}.bn_s1.running_var"] = var
        out[f"{prefix}.bn_s1.num_batches_tracked"] = torch.tensor(7)
    torch.save(out, path)
    return path


def write_ours(path: Path, state: dict[str, torch.Tensor], divisor: int = 16) -> Path:
    return save_weights(path, state, {"source": "test"}, divisor)
