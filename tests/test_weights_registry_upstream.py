"""The published DeepMask and Mask R-CNN entries of the weights registry say where the files really
are (issue 13): the PyTorch port's probably dead host, the old and new DeepMask hosts, and the
Matterport release PixelLib's own code points at."""

from __future__ import annotations

import re

import pytest

from scubasteve.cli import main
from scubasteve.weights.registry import known_model


def test_mask_rcnn_coco_falls_back_to_the_matterport_release_pixellib_points_at() -> None:
    info = known_model("mask_rcnn_coco")
    assert info is not None and info.url and "ayoolaolafenwa/PixelLib" in info.url
    assert info.mirrors == (
        "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5",
    )
    assert info.size is None and info.approx_size == 258_000_000  # Matterport's file, not pinned


def test_deepmask_files_try_the_current_host_then_the_old_s3_bucket() -> None:
    for name, path in (
        ("deepmask-t7", "deepmask/model.t7"),
        ("sharpmask-t7", "sharpmask/model.t7"),
        ("resnet50-t7", "resnet-50.t7"),
    ):
        info = known_model(name)
        assert info is not None
        assert info.url == f"https://dl.fbaipublicfiles.com/deepmask/models/{path}"
        assert info.mirrors == (f"https://s3.amazonaws.com/deepmask/models/{path}",)


def test_models_list_warns_that_the_port_host_is_probably_dead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    note = re.search(r"^Note: deepmask-pth: (.*)$", out, re.M)
    assert note and "probably dead" in note.group(1)
    assert "scubasteve models import deepmask-pth FILE" in note.group(1)
    assert main(["models", "list", "--long"]) == 0
    assert re.search(
        r"^  note:\s+the port's only address .*probably dead", capsys.readouterr().out, re.M
    )
