"""`scubasteve --self-test`: check that an installation works, from source or as the frozen app.

Each step checks one thing a user needs, is timed, and prints one line; a failed step prints what
failed and why, and the remaining steps still run so that one report shows every problem.
Exit status 0 when every step passed, 1 otherwise.

The test never touches the user's settings or models: after reporting where the user folders are,
it points them at a temporary folder. Qt runs offscreen, so it also works without a display; the
`display` step then opens a window on the real display (if any) in a child process.

Environment: SCUBASTEVE_SELF_TEST_REPORT=FILE also writes the report to FILE (a windowed Windows
build has no console to print to; without the variable it then writes `self-test.txt` in the user
cache folder); SCUBASTEVE_SELF_TEST_TIMEOUT=SECONDS (default 600) ends a hung
self-test with exit status 1 and names the step that hung.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from scubasteve import __version__

#: Proposals must find the drawn object this well (best IoU among them) to count as working.
MIN_CLASSIC_IOU = 0.5
DEFAULT_TIMEOUT_S = 600.0
_USER_DIR_VARS = ("SCUBASTEVE_CONFIG_DIR", "SCUBASTEVE_CACHE_DIR", "SCUBASTEVE_DATA_DIR")


class SelfTestFailure(Exception):
    """A step ran but found something wrong; the message says what."""


@dataclass
class Context:
    """What the steps share: a scratch folder and the scene loaded by the `resources` step.

    `image`: (H, W, 3) uint8 RGB. `truth`: (H, W) bool, the object's true mask. `box`: XYXY pixel
    edges around the object. `best_mask`: (H, W) bool, the best classic proposal once found.
    """

    workdir: Path
    user_models_dir: Path | None = None
    image: np.ndarray | None = None
    truth: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    label: str = "object"
    best_mask: np.ndarray | None = None
    qt_platform: str | None = None  # QT_QPA_PLATFORM as the user had it (the test runs offscreen)
    notes: dict[str, Any] = field(default_factory=dict)

    def scene(self) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
        if self.image is None or self.truth is None or self.box is None:
            raise SelfTestFailure(
                "needs the self-test scene, which the resources step did not load"
            )
        return self.image, self.truth, self.box


@dataclass(frozen=True)
class Step:
    """One check: `run` returns a short description of what it found, or raises to fail."""

    name: str
    run: Callable[[Context], str]


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str


# --- the steps ---------------------------------------------------------------------------------


def check_paths(ctx: Context) -> str:
    models = ctx.user_models_dir
    if models is None:
        raise SelfTestFailure("the user's models folder could not be worked out")
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and Path(bundle).resolve() in models.resolve().parents:
        raise SelfTestFailure(f"the models folder {models} is inside the installation")
    return f"models: {models}"


def check_resources(ctx: Context) -> str:
    from PIL import Image

    from scubasteve.io.images import load_image
    from scubasteve.resources import resource_path

    image = load_image(resource_path("selftest", "scene.png"))
    with Image.open(resource_path("selftest", "scene_mask.png")) as mask_file:
        truth = np.asarray(mask_file.convert("L")) > 0
    meta = json.loads(resource_path("selftest", "scene.json").read_text(encoding="utf-8"))
    if image.shape[:2] != truth.shape or not truth.any():
        raise SelfTestFailure(f"scene {image.shape} and mask {truth.shape} do not match")
    ctx.image, ctx.truth, ctx.label = image, truth, str(meta["label"])
    ctx.box = tuple(float(v) for v in meta["box"])  # type: ignore[assignment]
    icon = resource_path("icons", "scubasteve.png")
    return f"scene {image.shape[1]}x{image.shape[0]}, icon {icon.name}"


def check_window(ctx: Context) -> str:
    try:
        from scubasteve.gui import app as gui_app
    except ImportError as exc:
        raise SelfTestFailure(f"the desktop window is missing from this build: {exc}") from exc
    if not hasattr(gui_app, "on_first_shown"):
        raise SelfTestFailure("scubasteve.gui.app has no on_first_shown hook to close the window")
    seen: dict[str, Any] = {}

    def close_when_shown(window: Any) -> None:
        seen["title"] = window.windowTitle()
        seen["size"] = (window.width(), window.height())
        window.close()

    previous = gui_app.on_first_shown
    gui_app.on_first_shown = close_when_shown
    try:
        status = gui_app.run_app(folder=None)
    finally:
        gui_app.on_first_shown = previous
    if "title" not in seen:
        raise SelfTestFailure(f"the main window never showed (event loop ended with {status})")
    if status != 0:
        raise SelfTestFailure(f"the window closed with status {status}")
    width, height = seen["size"]
    return f"'{seen['title']}' opened offscreen ({width}x{height}) and closed"


def check_display(ctx: Context) -> str:
    from scubasteve.gui.qtcheck import display_problem

    frozen = getattr(sys, "frozen", False)
    command = [sys.executable, *([] if frozen else ["-m", "scubasteve"]), "--check-display"]
    name, problem = display_problem(command, ctx.qt_platform)
    if problem:
        raise SelfTestFailure(f"the window cannot open on the display ({name}): {problem}")
    if name == "none":
        return "no display to check (DISPLAY and WAYLAND_DISPLAY unset); the window needs one"
    return f"a window opened on the display (platform {name})"


def check_classic(ctx: Context) -> str:
    image, truth, box = ctx.scene()
    try:
        from scubasteve.inference.engines import create_proposer
    except ImportError as exc:
        raise SelfTestFailure(f"the engine registry is missing from this build: {exc}") from exc
    from scubasteve.core.geometry import Box, mask_iou

    proposer = create_proposer("classic")
    proposer.set_image(image)
    proposals = proposer.propose(Box(*box), k=10)
    if not proposals:
        raise SelfTestFailure("the classic engine returned no proposals")
    height, width = truth.shape
    masks = [p.full_mask(height, width) for p in proposals]
    ious = [mask_iou(m, truth) for m in masks]
    best = int(np.argmax(ious))
    if ious[best] < MIN_CLASSIC_IOU:
        raise SelfTestFailure(
            f"{len(proposals)} proposals, but the best overlaps the object only "
            f"{ious[best]:.2f} (IoU; at least {MIN_CLASSIC_IOU} expected)"
        )
    ctx.best_mask = masks[best]
    return f"{len(proposals)} proposals, best IoU {ious[best]:.2f} ({proposals[best].source})"


def check_labelme(ctx: Context) -> str:
    image, truth, _ = ctx.scene()
    from scubasteve.core.annotation import Annotation, ImageDoc
    from scubasteve.core.geometry import mask_iou
    from scubasteve.io.labelme import read_labelme, write_labelme
    from scubasteve.resources import resource_path

    mask, source = (ctx.best_mask, "classic") if ctx.best_mask is not None else (truth, "manual")
    folder = ctx.workdir / "labelme"
    folder.mkdir(parents=True, exist_ok=True)
    image_path = folder / "scene.png"
    shutil.copyfile(resource_path("selftest", "scene.png"), image_path)
    height, width = image.shape[:2]
    ann = Annotation.from_mask(ctx.label, mask, source=source, score=1.0)
    write_labelme(ImageDoc(image_path, width, height, [ann]), folder / "scene.json")
    back = read_labelme(folder / "scene.json")
    if [a.label for a in back.annotations] != [ctx.label]:
        raise SelfTestFailure(
            f"read back {[a.label for a in back.annotations]}, wrote [{ctx.label}]"
        )
    iou = mask_iou(back.annotations[0].to_mask(height, width), ann.to_mask(height, width))
    if iou < 0.99:
        raise SelfTestFailure(f"the polygon read back differs from the one written (IoU {iou:.3f})")
    size = (folder / "scene.json").stat().st_size
    return f"wrote and read back {size} bytes ({source} mask, IoU {iou:.3f})"


def check_torch(ctx: Context) -> str:
    import torch
    import torchvision
    from torchvision.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5).tolist()
    if keep != [0, 2]:
        raise SelfTestFailure(f"torchvision.ops.nms kept {keep}, expected [0, 2]")
    cuda = "CUDA available" if torch.cuda.is_available() else "CPU"
    return f"torch {torch.__version__}, torchvision {torchvision.__version__}, nms ok, {cuda}"


#: Channel divisor of the random IS-Net the self-test builds: the published layout, 16 times thinner.
SELF_TEST_ISNET_DIVISOR = 16


def check_isnet(ctx: Context) -> str:
    """The IS-Net engine end to end with a random-weight network of the published layout (channels
    divided by 16) that the step builds and writes itself: the weights reader, the network, the
    engine's own candidates, and the default engine's ranking of them with the classic engine's.
    No weights file is needed; the `onnx` library (which reads the published files) is loaded too."""
    image, truth, box = ctx.scene()
    import onnx
    import torch
    from onnx import numpy_helper

    from scubasteve.core.geometry import Box, mask_iou
    from scubasteve.inference.classic import ClassicProposer
    from scubasteve.inference.isnet import proposer_from_file
    from scubasteve.inference.isnet.network import build_isnet
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic
    from scubasteve.weights.isnet_file import save_weights

    probe = np.arange(6, dtype=np.float16).reshape(2, 3)
    if not np.array_equal(numpy_helper.to_array(numpy_helper.from_array(probe, "t")), probe):
        raise SelfTestFailure(f"onnx {onnx.__version__} does not read a float16 tensor back")
    torch.manual_seed(0)
    net = build_isnet(SELF_TEST_ISNET_DIVISOR)
    path = ctx.workdir / "isnet-random.pt"
    save_weights(path, net.state_dict(), {"source": "self-test"}, SELF_TEST_ISNET_DIVISOR)
    del net
    network = proposer_from_file(path, "cpu")  # the engine as the registry builds it, unwrapped
    network.set_image(image)
    own = network.propose(Box(*box), k=10)
    height, width = truth.shape
    if not own or any(not p.full_mask(height, width).any() for p in own):
        raise SelfTestFailure(f"IS-Net gave {len(own)} proposals, or an empty one")
    engine = IsnetWithClassic(network, ClassicProposer())
    engine.set_image(image)
    ranked = engine.propose(Box(*box), k=10)
    # Random weights make poor masks; ranked with the classic engine's, the object is still found.
    best = max((mask_iou(p.full_mask(height, width), truth) for p in ranked), default=0.0)
    if best < MIN_CLASSIC_IOU:
        raise SelfTestFailure(
            f"IS-Net with the classic engine gave {len(ranked)} proposals, the best overlapping "
            f"the object {best:.2f} (IoU; at least {MIN_CLASSIC_IOU} expected)"
        )
    return (
        f"random weights (channels / {SELF_TEST_ISNET_DIVISOR}, input "
        f"{network.options.input_size} px): {len(own)} own proposal(s); with the classic engine "
        f"{len(ranked)} ranked, best IoU {best:.2f}; onnx {onnx.__version__}"
    )


def check_sam2(ctx: Context) -> str:
    """The SAM 2 engine end to end with a random-initialised hiera-tiny written as upstream writes
    its checkpoints: the checkpoint reader, the package's configs (data files in a frozen build),
    the encoder and ten proposals. Passes with a note where the optional extra is not installed."""
    from scubasteve.inference.sam2 import sam2_problem

    if sam2_problem():
        return "not installed (optional: the `sam` extra)"
    image, _, box = ctx.scene()
    import torch
    from sam2.build_sam import build_sam2

    from scubasteve.core.geometry import Box
    from scubasteve.inference.sam2 import proposer_from_file

    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    path = ctx.workdir / "sam2.1_hiera_tiny-random.pt"
    torch.save({"model": model.state_dict()}, path)
    del model
    engine = proposer_from_file(path, "cpu")
    engine.set_image(image)
    proposals = engine.propose(Box(*box), k=10)
    if len(proposals) < 10:
        raise SelfTestFailure(f"SAM 2 gave {len(proposals)} proposals, 10 expected")
    return f"{engine.meta['variant']} (random weights): 10 proposals, {engine.last_encode_s:.1f} s encoder"


def check_tensorflow(ctx: Context) -> str:
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise SelfTestFailure("TF_USE_LEGACY_KERAS is not 1: TensorFlow would load Keras 3")
    from scubasteve.inference.maskrcnn.tf_runtime import native_log_filter, preload_triton

    preload_triton()  # Triton loaded after TensorFlow crashes the process (ADR 0403)
    with native_log_filter():  # TensorFlow's native notices only with -v
        import tensorflow as tf
        import tf_keras

    if not tf.keras.layers.Dense.__module__.startswith("tf_keras."):
        raise SelfTestFailure(f"tf.keras is {tf.keras.layers.Dense.__module__}, not tf_keras")
    layer = tf_keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")
    model = tf_keras.Sequential([tf_keras.Input(shape=(3,)), layer])
    out = model(tf.constant([[1.0, 2.0, 3.0]])).numpy()
    if not np.allclose(out, [[6.0, 6.0]]):
        raise SelfTestFailure(f"a Dense layer of ones gave {out.tolist()}, expected [[6, 6]]")
    return f"tensorflow {tf.__version__}, tf_keras {tf_keras.__version__}, Dense ok"


def check_pixellib(ctx: Context) -> str:
    # Importing PixelLib's Mask R-CNN switches TensorFlow to graph mode: keep this step last.
    import pixellib.instance.mask_rcnn as mask_rcnn

    if not hasattr(mask_rcnn, "MaskRCNN"):
        raise SelfTestFailure("pixellib.instance.mask_rcnn has no MaskRCNN class")
    return "pixellib.instance.mask_rcnn imported"


DEFAULT_STEPS: tuple[Step, ...] = (
    Step("paths", check_paths),
    Step("resources", check_resources),
    Step("window", check_window),
    Step("display", check_display),
    Step("classic", check_classic),
    Step("labelme", check_labelme),
    Step("torch", check_torch),
    Step("isnet", check_isnet),
    Step("sam2", check_sam2),
    Step("tensorflow", check_tensorflow),
    Step("pixellib", check_pixellib),
)


# --- running and reporting ---------------------------------------------------------------------


class _Report:
    """Writes each line at once to every output, so a crash still leaves the lines before it."""

    def __init__(self, streams: Sequence[TextIO]) -> None:
        self.streams = list(streams)

    def write(self, text: str) -> None:
        for stream in self.streams:
            stream.write(text)
            stream.flush()


def _report_streams(out: TextIO | None) -> tuple[list[TextIO], list[TextIO]]:
    """(all streams to write to, those this module opened and must close)."""
    streams: list[TextIO] = []
    opened: list[TextIO] = []
    target = out if out is not None else sys.stdout
    if target is not None:  # None in a windowed Windows build
        streams.append(target)
    report_file = os.environ.get("SCUBASTEVE_SELF_TEST_REPORT")
    if not report_file and not streams:
        # No console and no file asked for: leave the report where `--self-test` users can find it.
        from scubasteve.core.paths import cache_dir

        report_file = str(cache_dir() / "self-test.txt")
    if report_file:
        Path(report_file).parent.mkdir(parents=True, exist_ok=True)
        handle = open(report_file, "w", encoding="utf-8")  # noqa: SIM115  (closed by the caller)
        streams.append(handle)
        opened.append(handle)
    return streams, opened


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, SelfTestFailure):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _user_models_dir() -> Path | None:
    """Where weights are installed for this user, as the program finds them frozen or not."""
    from scubasteve.core.paths import models_dir

    try:
        return models_dir()
    except Exception:  # reported by the paths step
        return None


def _prepare_environment(workdir: Path) -> dict[str, str | None]:
    """Set what must be set before Qt and TensorFlow load; returns the old values to restore."""
    wanted = {
        "QT_QPA_PLATFORM": "offscreen",
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
    }
    if "PySide6.QtGui" in sys.modules:
        del wanted["QT_QPA_PLATFORM"]  # too late to change; the window step shows what it gets
    if "tensorflow" in sys.modules:
        del wanted["TF_USE_LEGACY_KERAS"]  # too late; the tensorflow step reports the Keras in use
    for name in _USER_DIR_VARS:
        wanted[name] = str(workdir / "user" / name.split("_")[1].lower())
    old = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    return old


def _restore_environment(old: dict[str, str | None]) -> None:
    for name, value in old.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _start_watchdog(report: _Report, current: list[str]) -> threading.Timer:
    limit = float(os.environ.get("SCUBASTEVE_SELF_TEST_TIMEOUT", DEFAULT_TIMEOUT_S))

    def expire() -> None:
        report.write(f"\nself-test FAILED: step {current[0]} did not finish within {limit:.0f} s\n")
        os._exit(1)

    timer = threading.Timer(limit, expire)
    timer.daemon = True
    timer.start()
    return timer


@contextlib.contextmanager
def _library_messages(into: list[str]) -> Iterator[None]:
    """Keep Python warnings and Qt's messages out of the report's table: libraries print them to
    stderr in the middle of a line. They are collected in `into` and listed after the table."""
    restore_qt = _capture_qt_messages(into)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield
    finally:
        restore_qt()
    for w in caught:
        into.append(f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})")


def _capture_qt_messages(into: list[str]) -> Callable[[], None]:
    try:
        from PySide6.QtCore import qInstallMessageHandler
    except ImportError:  # the window step reports a missing Qt
        return lambda: None

    def handler(mode: Any, context: Any, message: str) -> None:
        if "This plugin does not support" not in message:  # the offscreen platform's chatter
            into.append(f"Qt: {message}")

    previous = qInstallMessageHandler(handler)
    return lambda: qInstallMessageHandler(previous)


def run_steps(steps: Sequence[Step], ctx: Context, report: _Report) -> list[StepResult]:
    """Run every step in order, printing one line each; a failing step does not stop the rest."""
    results: list[StepResult] = []
    width = max(len(step.name) for step in steps)
    current = [""]
    watchdog = _start_watchdog(report, current)
    try:
        for step in steps:
            current[0] = step.name
            report.write(f"  {step.name:<{width}}  ")
            start = time.perf_counter()
            try:
                detail, ok = step.run(ctx), True
            except Exception as exc:  # every failure is reported the same way
                detail, ok = _describe_error(exc), False
            seconds = time.perf_counter() - start
            report.write(f"{'ok  ' if ok else 'FAIL'}  {seconds:6.2f} s  {detail}\n")
            results.append(StepResult(step.name, ok, seconds, detail))
    finally:
        watchdog.cancel()
    return results


def run_self_test(steps: Sequence[Step] | None = None, out: TextIO | None = None) -> int:
    """Run the self-test; 0 when every step passed, 1 otherwise (the report says which and why)."""
    steps = tuple(DEFAULT_STEPS if steps is None else steps)
    streams, opened = _report_streams(out)
    report = _Report(streams)
    frozen = "frozen" if getattr(sys, "frozen", False) else "from source"
    report.write(
        f"Scuba Steve {__version__} self-test ({frozen}, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()})\n"
    )
    workdir = Path(tempfile.mkdtemp(prefix="scubasteve-selftest-"))
    ctx = Context(workdir, _user_models_dir(), qt_platform=os.environ.get("QT_QPA_PLATFORM"))
    old_env = _prepare_environment(workdir)
    start = time.perf_counter()
    notes: list[str] = []
    try:
        with _library_messages(notes):
            results = run_steps(steps, ctx, report)
        if notes:
            report.write("  messages from libraries (not failures):\n")
            for note in dict.fromkeys(notes):
                report.write(f"    {note.splitlines()[0][:200]}\n")
        failed = [r.name for r in results if not r.ok]
        total = time.perf_counter() - start
        if failed:
            report.write(
                f"self-test FAILED: {len(failed)} of {len(results)} steps failed "
                f"({', '.join(failed)}) in {total:.1f} s\n"
            )
        else:
            report.write(f"self-test passed: {len(results)} steps in {total:.1f} s\n")
        return 1 if failed else 0
    finally:
        _restore_environment(old_env)
        shutil.rmtree(workdir, ignore_errors=True)
        for handle in opened:
            handle.close()
