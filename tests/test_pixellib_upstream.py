"""PixelLib's Mask R-CNN as PixelLib runs it (issue 13): its confidence threshold per speed preset
(`pixellib/instance/__init__.py`), and its `.h5` weights loaded by layer name without TensorFlow's
private `tensorflow.python.keras.saving.hdf5_format`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.maskrcnn_h5 import fake_h5, random_maskrcnn_h5

from scubasteve.core.errors import InputError
from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter


@pytest.mark.parametrize(
    ("speed", "score"),
    [(1024, 0.7), ("average", 0.45), (384, 0.25), ("rapid", 0.20), (640, 0.7)],
)
def test_default_min_score_is_pixellib_own_for_the_speed(tmp_path: Path, speed, score) -> None:
    seg = InstanceSegmenter(fake_h5(tmp_path / "coco.h5", "resnet101", 81), speed=speed)
    assert seg.min_score == score


def test_min_score_follows_the_speed_until_one_is_chosen(tmp_path: Path) -> None:
    seg = InstanceSegmenter(fake_h5(tmp_path / "coco.h5", "resnet101", 81))
    seg.set_speed(256)
    assert seg.min_score == 0.20
    seg.set_min_score(0.5)
    seg.set_speed(512)
    assert seg.min_score == 0.5  # a chosen threshold stays
    seg.set_min_score(None)
    assert seg.min_score == 0.45
    fixed = InstanceSegmenter(tmp_path / "coco.h5", speed=256, min_score=0.9)
    assert fixed.min_score == 0.9


def _load_with_private_keras_module_missing(path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Build the model of `path` and load it with `hdf5_format` made unimportable; returns each
    layer's (name, weights as loaded)."""
    from scubasteve.inference.maskrcnn.model import (
        build_model,
        inspect_h5,
        load_weights,
        make_config,
        spec_for,
    )
    from scubasteve.inference.maskrcnn.tf_runtime import GraphSession, tensorflow_thread

    monkeypatch.setitem(sys.modules, "tensorflow.python.keras.saving.hdf5_format", None)
    spec = spec_for(inspect_h5(path))

    def work():  # type: ignore[no-untyped-def]
        gs = GraphSession(use_gpu=False)
        try:

            def load():  # type: ignore[no-untyped-def]
                model = build_model("inference", make_config(spec, image_max_dim=256))
                load_weights(model, path)
                return [(layer.name, layer.get_weights()) for layer in model.keras_model.layers]

            return gs.run(load)
        finally:
            gs.close()

    return tensorflow_thread().call(work)


@pytest.mark.slow
def test_h5_weights_load_by_layer_name_without_the_private_keras_module(monkeypatch) -> None:
    import h5py

    path = random_maskrcnn_h5()
    loaded = _load_with_private_keras_module_missing(path, monkeypatch)
    compared = 0
    with h5py.File(path, "r") as f:
        for name, values in loaded:
            if name not in f or not values:
                continue
            group = f[name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            assert len(names) == len(values)
            for n, v in zip(names, values, strict=True):
                np.testing.assert_array_equal(v, np.asarray(group[n]))
                compared += 1
    assert compared > 300  # every conv, batch norm and head of the ResNet-50 Mask R-CNN


@pytest.mark.slow
def test_h5_of_another_shape_is_refused_naming_the_layer(tmp_path: Path, monkeypatch) -> None:
    import h5py

    path = tmp_path / "bad.h5"
    path.write_bytes(random_maskrcnn_h5().read_bytes())
    with h5py.File(path, "r+") as f:
        group = f["mrcnn_mask"]
        name = group.attrs["weight_names"][1]
        name = name.decode() if isinstance(name, bytes) else name
        del group[name]
        group.create_dataset(name, data=np.zeros(7, np.float32))
    with pytest.raises(InputError, match="mrcnn_mask"):
        _load_with_private_keras_module_missing(path, monkeypatch)
