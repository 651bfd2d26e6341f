"""`scubasteve annotate DIR --ray [ADDRESS]`: the folder pre-annotation on a Ray cluster.

A Ray Data pipeline: the images still to do (the same plan as the local command: resume, skip
hand-made files, `--overwrite`) -> decoded in Ray tasks -> Mask R-CNN in a fixed pool of actors,
each loading the model once (one per GPU, or CPU slots sized so that reading keeps a CPU: a pool
that takes every CPU starves the read tasks and never finishes) -> back on the driver, each image's
file is written through `preannotation.write_preannotation`, the code the local command uses, so
the content, the review flag and the atomic write are the same. Only finished images are written:
a killed worker or driver loses its in-flight images, which the next run does.

Images are read by path (on a cluster every node must see them: a shared file system) or, for a
folder given as a URI (`s3://...`), by the decode tasks through pyarrow (`remote_images`, ADR
0407); the files are written by the driver into a local output folder. The model file is shipped
through Ray's object store when the cluster has other nodes, so they need not have it. Ray is
imported only here, inside functions (ADR 0406).
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from scubasteve.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from scubasteve.core.errors import InputError
from scubasteve.core.progress import Progress
from scubasteve.core.project import Project
from scubasteve.inference.maskrcnn.tiling import AUTO, TileSetting
from scubasteve.inference.preannotation import (
    AnnotateSummary,
    ImageCallback,
    ImageOutcome,
    describe_failure,
    finish_image,
    plan_folder,
)
from scubasteve.inference.remote_images import RemoteFolder

#: How long a cluster address may take to answer before the run gives up.
CONNECT_TIMEOUT_S = 5.0
INSTALL_HINT = 'pip install "scubasteve[scale]" (or pip install "ray[data]")'


@dataclass(frozen=True)
class SegmenterSettings:
    """What each actor needs to build its `InstanceSegmenter` (plain, picklable)."""

    model: str
    class_names: tuple[str, ...]
    speed: int
    min_score: float
    classes: tuple[str, ...] | None
    device: str
    refiner: str | None = None
    prefer: str = "pixellib"
    tile: TileSetting = AUTO


@dataclass(frozen=True)
class PoolSize:
    actors: int
    cpus_per_actor: float
    gpus_per_actor: float

    def describe(self) -> str:
        what = "GPU" if self.gpus_per_actor else f"{self.cpus_per_actor:g} CPU"
        return f"Ray: {self.actors} Mask R-CNN actor(s), {what} each"


def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


def _probe(address: str) -> None:
    """Fail in seconds, naming the address, when nothing listens there (Ray itself retries long)."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise InputError(
            f"not a Ray address: {address!r} (use auto, host:port or ray://host:10001)"
        )
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InputError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); "
            "start one with `ray start --head` or check the address"
        ) from exc


@contextlib.contextmanager
def connected(address: str | None, log_to_driver: bool = False) -> Iterator[Any]:
    """Ray, connected: to `address`, to the Ray this process already runs, or a local one started
    (and stopped) for the run. `log_to_driver`: show what the workers print (training)."""
    ray = import_ray()
    if address is not None:
        _probe(address)
    if ray.is_initialized():  # this process already runs Ray (a notebook, a test): use it
        yield ray
        return
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=log_to_driver)
    except Exception as exc:  # Ray raises plain Exception when a local node starts too slowly
        where = f"the Ray cluster at {address}" if address else "a local Ray (did it start?)"
        raise InputError(f"cannot connect to {where}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def pool_size(resources: dict[str, float], workers: int | None) -> PoolSize:
    """One actor per GPU; on CPUs `workers` actors (default: all CPUs but one) sharing the CPUs
    left after keeping one for the read and decode tasks."""
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if gpus:
        return PoolSize(min(workers or gpus, gpus), 1.0, 1.0)
    actors = workers or max(1, int(cpus) - 1)
    spare = cpus - 1 if cpus >= 2 else cpus / 2
    return PoolSize(actors, round(min(1.0, spare / actors), 3), 0.0)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    """Ray task: read one image, from a path or a URI (an unreadable one becomes an error row,
    not a failed task)."""
    from scubasteve.inference.remote_images import is_uri, read_uri
    from scubasteve.io.images import decode_image_bytes, load_image

    source = row["source"]
    try:
        if is_uri(source):
            pixels, error = decode_image_bytes(read_uri(source), source), ""
        else:
            pixels, error = load_image(Path(source)), ""
    except InputError as exc:
        pixels, error = np.zeros((1, 1, 3), dtype=np.uint8), exc.problem
    except OSError as exc:  # a URI that cannot be read (gone, no permission, network)
        pixels, error = np.zeros((1, 1, 3), dtype=np.uint8), f"cannot read it: {exc}"
    return {**row, "pixels": pickle.dumps(pixels, protocol=5), "error": error}


class _Segment:
    """Ray actor: the model, loaded once; each call turns one decoded image into an `ImageResult`."""

    def __init__(self, settings: SegmenterSettings, model_ref: Any = None) -> None:
        from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter

        model = Path(settings.model)
        if not model.is_file() and model_ref is not None:
            import ray

            model = Path(tempfile.mkdtemp(prefix="scubasteve-model-")) / model.name
            model.write_bytes(ray.get(model_ref))
        self.settings = settings
        self.segmenter = InstanceSegmenter(
            model,
            class_names=settings.class_names,
            speed=settings.speed,
            min_score=settings.min_score,
            classes=settings.classes,
            device=settings.device,
        )
        self.segmenter.load()
        self.refiner = None
        if settings.refiner:
            from scubasteve.inference.preannotation import make_refiner

            self.refiner = make_refiner(settings.refiner, settings.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from scubasteve.inference.maskrcnn.tiling import detect_image
        from scubasteve.inference.preannotation import image_result

        results, errors = [], []
        for blob, error in zip(batch["pixels"], batch["error"], strict=True):
            result = b""
            if not error:
                rgb = pickle.loads(blob)
                try:
                    found = detect_image(self.segmenter, rgb, self.settings.tile)
                    result = pickle.dumps(
                        image_result(rgb, found, self.refiner, self.settings.prefer)
                    )
                except Exception as exc:  # one image's failure is that image's problem
                    error = describe_failure(exc)
            results.append(result)
            errors.append(error)
        return {
            "image": batch["image"],
            "json": batch["json"],
            "source": batch["source"],
            "result": np.array(results, dtype=object),
            "error": np.array(errors, dtype=object),
        }


def _ship_model(ray: Any, model: Path) -> Any:
    """An object-store copy of the model when other nodes may lack the file, else None."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return ray.put(model.read_bytes()) if len(alive) > 1 else None


def annotate_on_ray(
    project: Project | RemoteFolder,
    settings: SegmenterSettings,
    *,
    address: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    run_info: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
    on_image: ImageCallback | None = None,
) -> tuple[AnnotateSummary, str]:
    """Pre-annotate `project` on Ray; returns the summary and a line saying where it ran.

    `cancel`, `progress` and `on_image` as in `preannotation.annotate_images`: the driver writes
    each finished image through `preannotation.finish_image`, in the order Ray finishes them.
    """
    import_ray()  # a clear message before any work when Ray is missing
    summary = AnnotateSummary()
    started = time.perf_counter()
    todo = plan_folder(project, summary, overwrite)
    if not todo:
        return summary, "Ray: nothing to do"
    with connected(address) as ray:
        size = pool_size(ray.cluster_resources(), workers)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        source = getattr(project, "source", str)  # a URI for a RemoteFolder's images
        items = [{"image": str(i), "json": str(j), "source": source(i)} for i, j in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map(_decode)
        ds = ds.map_batches(
            _Segment,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=size.actors),
            num_cpus=size.cpus_per_actor,
            num_gpus=size.gpus_per_actor or None,
            fn_constructor_kwargs={
                "settings": settings,
                "model_ref": _ship_model(ray, Path(settings.model)),
            },
        )
        done = 0
        try:
            for row in ds.iter_rows():
                raise_if_cancelled(cancel)
                outcome = _finish(row, summary, run_info)
                done += 1
                if progress is not None:
                    progress(done, len(todo))
                if on_image is not None:
                    on_image(outcome)
        except Cancelled:
            raise
        except Exception as exc:  # a dead actor or node stops the pipeline: report, keep files
            summary.stopped = (
                f"the Ray run stopped after {done} of {len(todo)} image(s): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                "run the command again to do the rest"
            )
    summary.seconds = time.perf_counter() - started
    return summary, size.describe()


def _finish(
    row: dict[str, Any], summary: AnnotateSummary, run_info: dict[str, Any] | None
) -> ImageOutcome:
    """Driver side of one image: write its file, or record why it failed."""
    image, json_path = Path(row["image"]), Path(row["json"])
    shown = row["source"] if row["source"] != row["image"] else image  # a URI as it was given
    result = pickle.loads(row["result"]) if not row["error"] else None
    return finish_image(
        image, json_path, result, str(row["error"]), summary, run_info=run_info, shown=shown
    )
