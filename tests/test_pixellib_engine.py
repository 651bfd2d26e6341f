"""PixelLib instance segmenter: weights files, the TensorFlow thread, detection geometry, fallbacks."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers.maskrcnn_h5 import CLASSES, fake_h5, random_maskrcnn_h5

from scubasteve.core.errors import InputError
from scubasteve.core.geometry import mask_iou, polygons_to_mask
from scubasteve.inference.maskrcnn.instances import unmold_detections
from scubasteve.inference.maskrcnn.model import inspect_h5, spec_for
from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter, parse_speed

# --- weights files (no TensorFlow) ----------------------------------------------------------------


def test_h5_metadata_gives_backbone_class_count_and_names(tmp_path: Path) -> None:
    path = fake_h5(tmp_path / "m.h5", "resnet101", 3, ["cat", "dog"], fc=16)
    info = inspect_h5(path)
    assert (info.backbone, info.num_classes, info.fc_layers_size) == ("resnet101", 3, 16)
    assert info.class_names == ("cat", "dog")


def test_81_class_h5_without_names_is_the_coco_model(tmp_path: Path) -> None:
    spec = spec_for(inspect_h5(fake_h5(tmp_path / "coco.h5", "resnet101", 81)))
    assert spec.class_names[0] == "person" and len(spec.class_names) == 80


def test_missing_h5_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as err:
        InstanceSegmenter(tmp_path / "nope.h5")
    assert err.value.path == tmp_path / "nope.h5"


def test_a_file_that_is_not_hdf5_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "model.h5"
    bad.write_text("not weights")
    with pytest.raises(InputError, match="HDF5"):
        inspect_h5(bad)


def test_wrong_class_count_says_both_counts(tmp_path: Path) -> None:
    path = fake_h5(tmp_path / "m.h5", num_classes=4)
    with pytest.raises(InputError, match=r"model has 3 classes .* but 2 class names"):
        InstanceSegmenter(path, class_names=["a", "b"])


def test_custom_h5_without_class_names_asks_for_them(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not name them"):
        InstanceSegmenter(fake_h5(tmp_path / "m.h5", num_classes=4))


def test_unknown_class_in_filter_lists_the_model_classes(tmp_path: Path) -> None:
    path = fake_h5(tmp_path / "m.h5", num_classes=3, class_names=["cat", "dog"])
    with pytest.raises(InputError, match=r"'horse'.*it knows: cat, dog"):
        InstanceSegmenter(path, classes=["dog", "horse"])


def test_unknown_model_name_says_how_to_get_the_coco_weights() -> None:
    with pytest.raises(InputError, match=re.escape("releases/download/1.2/mask_rcnn_coco.h5")):
        InstanceSegmenter("mask_rcnn_coco")


@pytest.mark.parametrize(
    ("given", "size"), [("1024", 1024), (512, 512), ("fast", 384), ("rapid", 256)]
)
def test_speed_presets_accept_sizes_and_pixellib_names(given: object, size: int) -> None:
    assert parse_speed(given) == size  # type: ignore[arg-type]


def test_unknown_speed_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown speed"):
        parse_speed(300)
    assert parse_speed(640) == 640


def test_unreadable_image_file_is_an_input_error(tmp_path: Path) -> None:
    seg = InstanceSegmenter(fake_h5(tmp_path / "m.h5", num_classes=3, class_names=["a", "b"]))
    broken = tmp_path / "photo.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match=r"photo\.jpg"):
        seg.segment_async(broken)


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 5, 2), (0, 4, 3)])
def test_images_pixellib_cannot_use_are_input_errors(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    seg = InstanceSegmenter(fake_h5(tmp_path / "m.h5", num_classes=3, class_names=["a", "b"]))
    with pytest.raises(InputError, match="PixelLib"):
        seg.detect_async(np.zeros(shape, dtype=np.uint8))


# --- unmolding (no TensorFlow) --------------------------------------------------------------------


def _detections(rows: list[list[float]], pad: int = 2) -> np.ndarray:
    return np.array(rows + [[0.0] * 6] * pad, dtype=np.float32)


def test_unmolding_maps_a_box_back_through_resize_and_padding() -> None:
    # A 200x100 (HxW) image molded into 256x256: scale 1.28, width 128 centred with 64 px padding.
    molded, window = (256, 256, 3), (0, 64, 256, 192)
    # The box covering image rows 50..150, cols 25..75, in normalised molded coordinates.
    y1, x1, y2, x2 = 50 * 1.28, 64 + 25 * 1.28, 150 * 1.28, 64 + 75 * 1.28
    norm = [y1 / 255, x1 / 255, (y2 - 1) / 255, (x2 - 1) / 255]
    masks = np.zeros((3, 28, 28, 4), dtype=np.float32)
    masks[0, :, :, 2] = 1.0  # class 2 predicts the whole box
    masks[0, :, :, 1] = 0.0
    found = unmold_detections(
        _detections([[*norm, 2, 0.9]]), masks, molded, window, (200, 100), CLASSES
    )
    assert len(found) == 1
    inst = found[0]
    assert inst.label == "fig" and inst.score == pytest.approx(0.9)
    assert (inst.box.x0, inst.box.y0, inst.box.x1, inst.box.y1) == pytest.approx(
        (25, 50, 75, 150), abs=1
    )
    full = inst.patch.to_full(200, 100)
    assert full[50:150, 25:75].mean() > 0.95 and full.sum() == inst.patch.area
    ann = inst.annotation()
    assert ann.source == "pixellib" and ann.label == "fig"
    assert mask_iou(polygons_to_mask(ann.polygons, 200, 100), full) > 0.99


def test_unmolding_filters_by_score_and_class() -> None:
    masks = np.ones((4, 28, 28, 4), dtype=np.float32)
    rows = [
        [0.1, 0.1, 0.5, 0.5, 1, 0.9],
        [0.2, 0.2, 0.6, 0.6, 2, 0.4],
        [0.3, 0.3, 0.7, 0.7, 3, 0.8],
    ]
    args = (masks, (256, 256, 3), (0, 0, 256, 256), (256, 256), CLASSES)
    assert [i.label for i in unmold_detections(_detections(rows), *args, min_score=0.5)] == [
        "date",
        "hazelnut",
    ]
    only_figs = unmold_detections(_detections(rows), *args, classes=frozenset({"fig"}))
    assert [i.label for i in only_figs] == ["fig"]


def test_unmolding_stops_at_the_padding_rows() -> None:
    masks = np.ones((3, 28, 28, 4), dtype=np.float32)
    rows = [[0.1, 0.1, 0.5, 0.5, 1, 0.9], [0, 0, 0, 0, 0, 0], [0.2, 0.2, 0.6, 0.6, 2, 0.9]]
    found = unmold_detections(
        np.array(rows, np.float32), masks, (256, 256, 3), (0, 0, 256, 256), (256, 256), CLASSES
    )
    assert len(found) == 1


# --- the real network with random weights (TensorFlow, graph mode, one thread) -----------------------


def _synthetic_image(h: int = 240, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    image[40:140, 60:200] = (200, 60, 40)
    image[150:220, 220:300] = (40, 180, 90)
    return image


@pytest.fixture(scope="module")
def segmenter() -> InstanceSegmenter:
    seg = InstanceSegmenter(random_maskrcnn_h5(), speed=256, min_score=0.0, device="cpu")
    seg.load()
    yield seg
    seg.close()


@pytest.mark.slow
def test_unmolded_instances_match_pixellib_own_unmolding(segmenter: InstanceSegmenter) -> None:
    """Our box-local unmolding against PixelLib's full-image one, on the same network output."""
    from scubasteve.inference.maskrcnn.tf_runtime import tensorflow_thread

    image = _synthetic_image()
    detections, masks, molded_shape, window = tensorflow_thread().call(
        segmenter._session.run, segmenter._predict, image
    )
    ours = unmold_detections(detections, masks, molded_shape, window, (240, 320), CLASSES)
    assert ours, "a random-weights model still detects something at threshold 0"
    rois, class_ids, scores, full_masks = segmenter._model.unmold_detections(
        detections, masks, image.shape, molded_shape, window
    )
    # PixelLib keeps detections whose mask is empty after thresholding; we drop those.
    kept = [j for j in range(len(scores)) if full_masks[:, :, j].any()]
    assert abs(len(ours) - len(kept)) <= max(2, len(kept) // 20)
    # Scores of a random model tie and boxes repeat, so match by box and class, not by rank.
    index: dict[tuple, list[int]] = {}
    for j in kept:
        index.setdefault((tuple(int(v) for v in rois[j]), int(class_ids[j])), []).append(j)
    ious = []
    for inst in ours:
        candidates = index[((inst.box.y0, inst.box.x0, inst.box.y1, inst.box.x1), inst.class_id)]
        full = inst.patch.to_full(240, 320)
        ious.append(max(mask_iou(full, full_masks[:, :, j]) for j in candidates))
        assert inst.score in {float(scores[j]) for j in candidates}
    assert np.mean(ious) > 0.98 and min(ious) > 0.8


@pytest.mark.slow
def test_detect_runs_pixellib_molding_and_network_end_to_end(segmenter: InstanceSegmenter) -> None:
    from scubasteve.inference.maskrcnn.tf_runtime import tensorflow_thread

    image = _synthetic_image()
    ours = segmenter.detect(image)
    ref = tensorflow_thread().call(
        segmenter._session.run, lambda: segmenter._model.detect([image])[0]
    )
    assert ours and len(ref["scores"])
    boxes = {tuple(int(v) for v in r) for r in ref["rois"]}
    matched = sum((i.box.y0, i.box.x0, i.box.y1, i.box.x1) in boxes for i in ours)
    assert matched >= 0.9 * len(ours)  # the same boxes, up to float noise between two runs


@pytest.mark.slow
def test_annotations_stay_inside_the_image_in_original_pixels(segmenter: InstanceSegmenter) -> None:
    image = _synthetic_image(300, 200)
    anns = segmenter.segment(image)
    assert anns and all(a.source == "pixellib" and a.label in CLASSES for a in anns)
    assert [a.score for a in anns] == sorted((a.score for a in anns), reverse=True)
    for ann in anns:
        box = ann.bounds()
        assert 0 <= box.x0 < box.x1 <= 200 and 0 <= box.y0 < box.y1 <= 300


@pytest.mark.slow
def test_async_calls_from_several_threads_all_run_on_the_tensorflow_thread(
    segmenter: InstanceSegmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scubasteve.inference.maskrcnn.tf_runtime import tensorflow_thread

    seen: set[str] = set()
    original = segmenter._predict

    def spy(rgb: np.ndarray):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        assert tensorflow_thread().on_thread()
        return original(rgb)

    monkeypatch.setattr(segmenter, "_predict", spy)
    image = _synthetic_image()
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(len(segmenter.segment(image))))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 1 and len(set(results)) == 1 and len(results) == 3
    assert segmenter.segment_async(image).result(timeout=60) is not None


@pytest.mark.slow
def test_threshold_and_class_filter_apply_without_reloading(segmenter: InstanceSegmenter) -> None:
    image = _synthetic_image()
    model = segmenter._model
    everything = segmenter.detect(image)
    # Filter on the commonest label of this random model, at its median score.
    label = max(CLASSES, key=lambda c: sum(i.label == c for i in everything))
    threshold = float(np.median([i.score for i in everything if i.label == label]))
    segmenter.set_classes([label])
    segmenter.set_min_score(threshold)
    try:
        filtered = segmenter.detect(image)
    finally:
        segmenter.set_classes(None)
        segmenter.set_min_score(0.0)
    assert segmenter._model is model
    assert filtered and all(i.label == label and i.score >= threshold for i in filtered)
    # Two runs of the network differ by float noise, so the counts agree up to a few detections.
    expected = [i for i in everything if i.label == label and i.score >= threshold]
    assert abs(len(filtered) - len(expected)) <= max(2, len(expected) // 10)
    assert len(filtered) < len(everything)


@pytest.mark.slow
def test_gpu_failure_falls_back_to_the_cpu_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import scubasteve.inference.maskrcnn.segmenter as engine

    monkeypatch.setattr(engine, "visible_gpus", lambda: ["/physical_device:GPU:0"])
    original = InstanceSegmenter._build

    def build(self: InstanceSegmenter, use_gpu: bool) -> None:
        if use_gpu:
            raise RuntimeError("CUDA_ERROR_OUT_OF_MEMORY: out of memory")
        original(self, use_gpu)

    monkeypatch.setattr(InstanceSegmenter, "_build", build)
    seg = InstanceSegmenter(random_maskrcnn_h5(), speed=256, min_score=0.0)
    try:
        description = seg.device_description()
        assert (
            "CPU" in description and "GPU failed" in description and "OUT_OF_MEMORY" in description
        )
        assert seg.detect(_synthetic_image())
    finally:
        seg.close()
