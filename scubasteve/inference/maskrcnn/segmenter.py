"""`InstanceSegmenter`: whole-image instance segmentation with PixelLib's Mask R-CNN.

Serves the COCO model (`mask_rcnn_coco`) and models trained here with their own class lists. Every
TensorFlow call runs on the process-wide TensorFlow thread (`tf_runtime.tensorflow_thread()`); the
public methods either return a `Future` (`segment_async`, `detect_async`, `load_async`) or wait for
one (`segment`, `detect`, `load`), so a Qt worker or the CLI can call them from any thread.

Detections are turned into box-local `MaskPatch`es straight from the network's 28x28 masks (PixelLib's
own `detect` pastes every mask into a full-image array, which costs gigabytes on large images).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import Annotation
from scubasteve.core.errors import InputError
from scubasteve.inference.base import as_rgb
from scubasteve.inference.maskrcnn.instances import Instance, unmold_detections
from scubasteve.inference.maskrcnn.model import (
    MaskRCNNSpec,
    build_model,
    inspect_h5,
    load_weights,
    make_config,
    spec_for,
)
from scubasteve.inference.maskrcnn.tf_runtime import (
    GraphSession,
    TensorFlowDevice,
    tensorflow_thread,
    visible_gpus,
)
from scubasteve.inference.maskrcnn.tiling import check_image_size

log = logging.getLogger(__name__)

#: Speed presets: longest side the image is resized to -> (min side, max side), as PixelLib's
#: default, "average", "fast" and "rapid" modes.
SPEED_PRESETS: dict[int, tuple[int, int]] = {
    1024: (800, 1024),
    512: (512, 512),
    384: (384, 384),
    256: (256, 256),
}
_PIXELLIB_SPEED_NAMES = {None: 1024, "average": 512, "fast": 384, "rapid": 256}
#: PixelLib's confidence threshold for each preset (`pixellib/instance/__init__.py`:
#: `coco_config` has DETECTION_MIN_CONFIDENCE = 0.7; `instance_segmentation(infer_speed=...)` sets
#: 0.45 for "average", 0.25 for "fast", 0.20 for "rapid"). Other input sizes get the default 0.7.
PIXELLIB_MIN_SCORES: dict[int, float] = {1024: 0.7, 512: 0.45, 384: 0.25, 256: 0.20}


def pixellib_min_score(speed: int) -> float:
    """PixelLib's own confidence threshold at this input size (see `PIXELLIB_MIN_SCORES`)."""
    return PIXELLIB_MIN_SCORES.get(speed, PIXELLIB_MIN_SCORES[1024])


def parse_speed(speed: int | str | None) -> int:
    """1024/512/384/256 (or PixelLib's names None/"average"/"fast"/"rapid") -> the input size.

    Other multiples of 64 up to 2048 are accepted too (a custom model is best run at the size it
    was trained at); they resize the image's longest side to that size.
    """
    if speed in _PIXELLIB_SPEED_NAMES:
        return _PIXELLIB_SPEED_NAMES[speed]
    try:
        value = int(speed)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = -1
    if value not in SPEED_PRESETS and not (64 <= value <= 2048 and value % 64 == 0):
        raise InputError(
            f"unknown speed {speed!r}; choose one of {sorted(SPEED_PRESETS, reverse=True)} "
            "(or another multiple of 64 up to 2048)"
        )
    return value


class InstanceSegmenter:
    """PixelLib Mask R-CNN over a whole image, returning our annotations.

    `weights`: a model name known to the registry (`mask_rcnn_coco`, a trained model) or an .h5 path.
    `class_names`: names for an .h5 that carries none (81-class files default to COCO).
    `speed`: 1024, 512, 384 or 256 (longest side the image is resized to). `min_score`: confidence
    threshold; None follows PixelLib, whose threshold depends on the speed (0.7 / 0.45 / 0.25 /
    0.20), also after `set_speed`. `classes`: keep only these labels (None: all). `device`: "auto" (GPU if TensorFlow sees
    one, else CPU) or "cpu". The model loads on first use or with `load()`.
    """

    def __init__(
        self,
        weights: str | Path = "mask_rcnn_coco",
        *,
        class_names: Sequence[str] | None = None,
        speed: int | str | None = 1024,
        min_score: float | None = None,
        classes: Iterable[str] | None = None,
        device: str = "auto",
    ) -> None:
        from scubasteve.inference.maskrcnn.weights import KIND, registered_class_names
        from scubasteve.weights import resolve_weights

        if device not in ("auto", "cpu", "gpu", "cuda"):
            raise InputError(f"unknown device {device!r}; choose auto, cpu or gpu")
        self.path = resolve_weights(weights, kind=KIND)
        self.spec: MaskRCNNSpec = spec_for(
            inspect_h5(self.path), class_names, registered_class_names(weights)
        )
        self.speed = parse_speed(speed)
        self.auto_min_score = min_score is None
        self.min_score = (
            pixellib_min_score(self.speed) if min_score is None else self._check_score(min_score)
        )
        self.classes: frozenset[str] | None = None
        self.set_classes(classes)
        self.device_request = device
        self._thread = tensorflow_thread()
        self._session: GraphSession | None = None
        self._model: Any = None
        self._device: TensorFlowDevice | None = None

    # --- settings ---------------------------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @staticmethod
    def _check_score(value: float) -> float:
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(f"confidence threshold must be between 0 and 1, got {value}")
        return float(value)

    def set_classes(self, classes: Iterable[str] | None) -> None:
        """Keep only these labels; an unknown label is an error naming the model's classes."""
        if classes is None:
            self.classes = None
            return
        wanted = [c.strip() for c in classes if c.strip()]
        unknown = [c for c in wanted if c not in self.spec.class_names]
        if unknown:
            known = ", ".join(self.spec.class_names[:20])
            more = ", ..." if len(self.spec.class_names) > 20 else ""
            raise InputError(
                f"unknown class {', '.join(map(repr, unknown))} for this model; it knows: {known}{more}",
                self.path,
            )
        self.classes = frozenset(wanted) or None

    def set_min_score(self, value: float | None) -> None:
        """A fixed confidence threshold, or None for PixelLib's threshold of the speed."""
        self.auto_min_score = value is None
        self.min_score = (
            pixellib_min_score(self.speed) if value is None else self._check_score(value)
        )

    def set_speed(self, speed: int | str | None) -> None:
        self.speed = parse_speed(speed)
        if self.auto_min_score:
            self.min_score = pixellib_min_score(self.speed)

    # --- loading ----------------------------------------------------------------------------------

    def load(self) -> None:
        self.load_async().result()

    def load_async(self) -> concurrent.futures.Future[TensorFlowDevice]:
        return self._thread.submit(self._ensure_loaded)

    def device_description(self) -> str:
        """Where TensorFlow runs this model, e.g. "TensorFlow on CPU: no GPU visible". Loads it."""
        return self._thread.call(self._ensure_loaded).describe()

    def _ensure_loaded(self) -> TensorFlowDevice:
        if self._device is not None:
            return self._device
        gpus = visible_gpus() if self.device_request != "cpu" else []
        if gpus:
            try:
                self._build(use_gpu=True)
                self._device = TensorFlowDevice("gpu", ", ".join(gpus))
                return self._device
            except InputError:
                raise
            except Exception as exc:
                self._fall_back_to_cpu(exc)
                return self._device  # type: ignore[return-value]
        reason = "CPU requested" if self.device_request == "cpu" else "no GPU visible to TensorFlow"
        self._build(use_gpu=False)
        self._device = TensorFlowDevice("cpu", "", reason)
        log.info("PixelLib model %s: %s", self.path.name, self._device.describe())
        return self._device

    def _build(self, use_gpu: bool) -> None:
        session = GraphSession(use_gpu=use_gpu)
        try:
            config = make_config(self.spec, image_max_dim=1024, min_confidence=0.0)
            model = session.run(build_model, "inference", config)
            session.run(load_weights, model, self.path)
        except BaseException:
            session.close()
            raise
        self.close_session()
        self._session, self._model = session, model

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        log.warning("TensorFlow failed on the GPU (%s); using the CPU instead", exc)
        self._build(use_gpu=False)
        self._device = TensorFlowDevice("cpu", "", f"the GPU failed ({type(exc).__name__}: {exc})")

    def close_session(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session, self._model = None, None

    def close(self) -> None:
        """Free the model (its graph and session); a later call loads it again."""
        self._thread.call(self._close_on_thread)

    def _close_on_thread(self) -> None:
        self.close_session()
        self._device = None

    # --- running ----------------------------------------------------------------------------------

    def detect_async(
        self, image: np.ndarray | str | Path, size: tuple[int, int] | None = None
    ) -> concurrent.futures.Future[list[Instance]]:
        """Instances in `image` ((H, W, 3) uint8 RGB, or an image path), best score first.

        `size`: (height, width) of the image `image` is a resized copy of; boxes and masks are
        then in that image's pixels (each 28x28 mask resized straight to its box there, as
        tiling does for the whole image shrunk). None: `image`'s own pixels.
        """
        rgb = _read_image(image)
        return self._thread.submit(self._detect_on_thread, rgb, size)

    def detect(
        self, image: np.ndarray | str | Path, size: tuple[int, int] | None = None
    ) -> list[Instance]:
        return self.detect_async(image, size).result()

    def segment_async(
        self, image: np.ndarray | str | Path
    ) -> concurrent.futures.Future[list[Annotation]]:
        """Annotations (label, polygons, score, source "pixellib") for `image`, best first.

        The outlines are traced on a helper thread, not the TensorFlow thread, which meanwhile can
        serve the next request.
        """
        detected = self.detect_async(image)
        return _outline_executor().submit(lambda: [i.annotation() for i in detected.result()])

    def segment(self, image: np.ndarray | str | Path) -> list[Annotation]:
        return self.segment_async(image).result()

    def _detect_on_thread(self, rgb: np.ndarray, size: tuple[int, int] | None) -> list[Instance]:
        self._ensure_loaded()
        try:
            raw = self._session.run(self._predict, rgb)  # type: ignore[union-attr]
        except InputError:
            raise
        except Exception as exc:
            if self._session is None or not self._session.use_gpu:
                raise
            self._fall_back_to_cpu(exc)
            raw = self._session.run(self._predict, rgb)
        detections, masks, molded_shape, window = raw
        return unmold_detections(
            detections,
            masks,
            molded_shape,
            window,
            size or (rgb.shape[0], rgb.shape[1]),
            self.spec.class_names,
            self.min_score,
            self.classes,
        )

    def _predict(
        self, rgb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], np.ndarray]:
        """Run the network on one image; returns raw detections, masks, molded shape and window."""
        model = self._model
        min_dim, max_dim = SPEED_PRESETS.get(self.speed, (self.speed, self.speed))
        # The graph does not depend on the image size, so the preset only changes how inputs are molded.
        cfg = model.config
        cfg.IMAGE_MIN_DIM, cfg.IMAGE_MAX_DIM = min_dim, max_dim
        cfg.IMAGE_SHAPE = np.array([max_dim, max_dim, 3])
        with warnings.catch_warnings():
            # PixelLib's resize compares scikit-image versions with distutils on every image.
            warnings.simplefilter("ignore", DeprecationWarning)
            molded, metas, windows = model.mold_inputs([rgb])
        anchors = model.get_anchors(molded[0].shape)
        anchors = np.broadcast_to(anchors, (1, *anchors.shape))
        outputs = model.keras_model.predict([molded, metas, anchors], verbose=0)
        return outputs[0][0], outputs[3][0], tuple(molded[0].shape), windows[0]


_OUTLINER: concurrent.futures.ThreadPoolExecutor | None = None
_OUTLINER_LOCK = threading.Lock()


def _outline_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _OUTLINER
    with _OUTLINER_LOCK:
        if _OUTLINER is None:
            _OUTLINER = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="pixellib-outline"
            )
        return _OUTLINER


def _read_image(image: np.ndarray | str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from an array or a file; InputError for what PixelLib cannot use."""
    path = None
    if isinstance(image, (str, Path)):
        from scubasteve.io.images import load_image

        path = Path(image)
        image = load_image(path)
    try:
        rgb = as_rgb(image)
    except ValueError as exc:
        raise InputError(f"PixelLib cannot use this image: {exc}", path) from exc
    check_image_size(rgb.shape[1], rgb.shape[0], path)
    return rgb
