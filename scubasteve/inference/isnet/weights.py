"""Loading IS-Net weights into the network.

Reading and checking files is the weights layer's (`scubasteve.weights.isnet_file`): any file it
reads (ONNX in three precisions, DIS's `.pth`, ours) is read directly, in about a second for the
published 170 MB file, so nothing is converted or cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scubasteve.weights.isnet_file import IsnetWeights, read_weights


def load_weights_file(path: str | Path) -> IsnetWeights:
    """Weights of any supported file (`InputError` naming the file for anything else)."""
    return read_weights(path)


def build_model(weights: IsnetWeights, device: str = "cpu") -> Any:
    """The network with `weights` loaded, in eval mode on `device` (channels-last memory)."""
    import torch

    from scubasteve.inference.isnet.network import build_isnet

    net = build_isnet(weights.divisor)
    net.load_state_dict(weights.state_dict, strict=True)
    return net.to(device, memory_format=torch.channels_last).eval()
