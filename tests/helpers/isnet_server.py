"""The published IS-Net entry served from a local HTTP server, for download tests.

The registry's `isnet-general-use` must be the full network (a thinner one of the same layout is
refused under the published name), so the file served is an int8 ONNX of the full layout with zero
weights: about 44 MB, written once per test session, read by the same content check as the real
float32 file. The registry entry is pointed at the server with its size and SHA-256.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from helpers.file_server import FileServer
from helpers.isnet import write_int8_onnx
from scubasteve.weights import registry as weights_registry
from scubasteve.weights.isnet_file import expected_shapes

NAME = "isnet-general-use"
URL_PATH = "/isnet-general-use.onnx"


def full_layout_onnx(path: Path) -> bytes:
    """An int8 ONNX file of the published layout (zero weights); returns its bytes."""
    state = {key: torch.zeros(shape) for key, shape in expected_shapes(1).items()}
    write_int8_onnx(path, state)
    del state
    return path.read_bytes()


def other_full_layout_onnx(data: bytes) -> bytes:
    """Another valid file of the same size: one weight byte in the middle changed."""
    middle = len(data) // 2
    assert data[middle] == 0, "the middle of the file is expected inside a zero weight tensor"
    return data[:middle] + b"\x01" + data[middle + 1 :]


def serve_isnet(
    server: FileServer, data: bytes, monkeypatch: pytest.MonkeyPatch, *, pinned: bool = True
) -> None:
    """Serve `data` as the published IS-Net file and point the registry entry at it (`pinned`:
    with its size and SHA-256, as the real entry is; else with neither)."""
    server.files[URL_PATH] = data
    size = len(data) if pinned else None
    sha = hashlib.sha256(data).hexdigest() if pinned else None
    entries = tuple(
        dataclasses.replace(info, url=server.url(URL_PATH), mirrors=(), size=size, sha256=sha)
        if info.name == NAME
        else info
        for info in weights_registry.KNOWN_MODELS
    )
    assert any(info.name == NAME for info in entries), "the registry lost its IS-Net entry"
    monkeypatch.setattr(weights_registry, "KNOWN_MODELS", entries)
