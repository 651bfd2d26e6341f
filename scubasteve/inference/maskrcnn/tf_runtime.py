"""TensorFlow for PixelLib: imported lazily, with Keras 2, and driven from one dedicated thread.

Importing `pixellib.instance.mask_rcnn` switches TensorFlow to graph mode for the whole process, and a
Keras model in graph mode must be run in the graph and session it was built in. Every TensorFlow call
of the program therefore goes through `tensorflow_thread()`, a single worker thread shared by all
PixelLib models; callers (Qt workers, the CLI) get `Future`s back. Each model owns its own `tf.Graph`
and `Session` (`GraphSession`), so several models can live side by side on that thread.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from scubasteve.core.errors import ScubaSteveError

log = logging.getLogger(__name__)

T = TypeVar("T")


class TensorFlowUnavailable(ScubaSteveError):
    """TensorFlow, tf_keras or PixelLib cannot be imported, or TensorFlow was imported with Keras 3."""


class TensorFlowThread:
    """A single worker thread that runs every TensorFlow call in submission order.

    `submit(fn, ...)` returns a Future; `call(fn, ...)` waits for the result. A call made from the
    worker thread itself runs inline, so code already on the thread never deadlocks on itself.
    """

    def __init__(self, name: str = "tensorflow") -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name
        )
        self._ident: int | None = None
        # Learn the worker's identity up front so that `on_thread()` is exact from the start.
        self._ident = self._executor.submit(threading.get_ident).result()

    def on_thread(self) -> bool:
        return threading.get_ident() == self._ident

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        if self.on_thread():
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)
            return future
        return self._executor.submit(fn, *args, **kwargs)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return self.submit(fn, *args, **kwargs).result()

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait)


_THREAD: TensorFlowThread | None = None
_THREAD_LOCK = threading.Lock()


def tensorflow_thread() -> TensorFlowThread:
    """The process-wide TensorFlow thread (created on first use)."""
    global _THREAD
    with _THREAD_LOCK:
        if _THREAD is None:
            _THREAD = TensorFlowThread()
        return _THREAD


def import_tensorflow() -> Any:
    """Import TensorFlow with Keras 2 (tf_keras) and PixelLib's Mask R-CNN; returns the tf module.

    TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported: PixelLib's weight loading
    only works with Keras 2. If something imported TensorFlow earlier with Keras 3, say so plainly.
    """
    already = "tensorflow" in sys.modules
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not already:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        preload_triton()
    try:
        with native_log_filter():
            import tensorflow as tf
            import tf_keras  # noqa: F401  (Keras 2; PixelLib needs it)
    except ImportError as exc:
        raise TensorFlowUnavailable(
            f"PixelLib needs TensorFlow and tf_keras ({exc}); install them with "
            "`pip install tensorflow tf_keras`"
        ) from exc
    # TensorFlow's Python logger warns about deprecated calls inside PixelLib on every model build.
    tf.get_logger().setLevel(logging.ERROR)
    # With Keras 2, tf.keras layers come from the tf_keras package; with Keras 3 from `keras`.
    keras_module = tf.keras.layers.Dense.__module__
    if not keras_module.startswith("tf_keras."):
        raise TensorFlowUnavailable(
            "TensorFlow was imported with Keras 3 before PixelLib was used; set the environment "
            "variable TF_USE_LEGACY_KERAS=1 before starting the program"
        )
    try:
        import pixellib.instance.mask_rcnn  # noqa: F401  (switches TensorFlow to graph mode)
    except ImportError as exc:
        raise TensorFlowUnavailable(f"PixelLib cannot be imported: {exc}") from exc
    return tf


#: Lines TensorFlow's native libraries write to stderr (absl/glog format) while being imported.
_NATIVE_LOG_LINE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} )"
)


@contextlib.contextmanager
def native_log_filter() -> Any:
    """Drop TensorFlow's native log lines from stderr meanwhile, unless -v (TF_CPP_MIN_LOG_LEVEL < 3).

    TF_CPP_MIN_LOG_LEVEL=3 silences TensorFlow's own logging, but lines written through absl before
    it is initialised ("Could not find cuda drivers ...") ignore it. Stderr (fd 2) goes through a
    pipe meanwhile and every other line is passed on, so nothing else written then is lost.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "3":
        yield
        return
    try:
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:  # no usable stderr (a windowed build): nothing to filter
        yield
        return

    def pump() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not _NATIVE_LOG_LINE.match(line):
                    with contextlib.suppress(OSError):
                        os.write(saved, line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump reads to the end and stops
        thread.join(5.0)
        os.close(saved)


def preload_triton() -> None:
    """Load Triton (PyTorch's kernel compiler) before TensorFlow, when it is installed.

    Loading Triton's native library after TensorFlow's crashes the process (segmentation fault;
    TensorFlow 2.21 with Triton 3.8), and PyTorch loads Triton lazily, e.g. when the first optimizer
    is created. Loaded the other way round both work, so DeepMask training after PixelLib in the same
    process (the GUI, the test suite) stays possible. See docs/adr/0403-triton-before-tensorflow.md.
    """
    if "triton" in sys.modules:
        return
    try:
        import triton  # noqa: F401
    except Exception as exc:  # not installed, or broken: PyTorch then runs without it as well
        log.debug("Triton not preloaded: %s", exc)


@dataclass(frozen=True)
class TensorFlowDevice:
    """Where a model runs. `kind` is "gpu" or "cpu"; `reason` says why the CPU is used."""

    kind: str
    name: str
    reason: str = ""

    def describe(self) -> str:
        text = f"TensorFlow on {self.kind.upper()}"
        if self.name:
            text += f" ({self.name})"
        if self.reason:
            text += f": {self.reason}"
        return text


def visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow sees (empty without a usable CUDA setup). TF thread only."""
    tf = import_tensorflow()
    try:
        return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception as exc:  # a broken driver must not stop CPU use
        log.warning("TensorFlow could not list GPUs: %s", exc)
        return []


class GraphSession:
    """A private `tf.Graph` with its own `Session`; `run(fn)` calls fn inside both. TF thread only.

    `use_gpu=False` hides the GPUs from the session, which is how a model falls back to the CPU
    after the GPU failed.
    """

    def __init__(self, use_gpu: bool) -> None:
        tf = import_tensorflow()
        self.use_gpu = use_gpu
        self.graph = tf.Graph()
        proto = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        if use_gpu:
            proto.gpu_options.allow_growth = True
        else:
            proto.device_count["GPU"] = 0
        threads = os.environ.get("SCUBASTEVE_TF_THREADS")
        if threads and threads.isdigit():
            proto.intra_op_parallelism_threads = int(threads)
            proto.inter_op_parallelism_threads = int(threads)
        self.session = tf.compat.v1.Session(graph=self.graph, config=proto)

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        # Keras 2 in graph mode uses the default session when there is one, so this pair of
        # contexts is all it takes to aim every Keras call at this model's own graph.
        with self.graph.as_default(), self.session.as_default():
            return fn(*args, **kwargs)

    def close(self) -> None:
        self.session.close()
