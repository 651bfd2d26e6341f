"""Throughput of `scubasteve annotate` locally and on a local Ray (1 and 2 actors): docs/scale.md.

Usage: python scripts/bench_ray_annotate.py [N_IMAGES] [SPEED]
       python scripts/bench_ray_annotate.py overhead [N_IMAGES]
Copies N coco128-seg images (../shared/data) into a temporary folder and pre-annotates them with a
random-weights ResNet-50 Mask R-CNN with the 80 COCO classes (the network's cost does not depend on
its weights; no trained weights can be downloaded here). Prints, per run: start-up (connecting,
TensorFlow and the model in each actor) and the steady rate between the first and the last image.
`overhead`: Ray's own cost per image, without a network: the same pipeline (decode tasks, a
one-actor pool, rows back to the driver) with an actor that does nothing, against decoding locally.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "data" / "coco128-seg" / "images"


def main() -> None:
    import ray

    from scubasteve.core.labels import COCO80
    from scubasteve.core.project import Project
    from scubasteve.inference import ray_annotate
    from scubasteve.inference.maskrcnn.model import MaskRCNNSpec, save_random_weights
    from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter
    from scubasteve.inference.preannotation import annotate_folder

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    speed = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    folder = work / "images"
    folder.mkdir()
    for src in sorted(IMAGES.iterdir())[:n]:
        shutil.copy(src, folder / src.name)
    model = save_random_weights(work / "r50.h5", MaskRCNNSpec("resnet50", COCO80), image_dim=1024)

    t0 = time.perf_counter()
    segmenter = InstanceSegmenter(model, speed=speed, min_score=0.5, device="cpu")
    segmenter.load()
    load = time.perf_counter() - t0
    summary = annotate_folder(
        Project.open(folder, annotation_dir=work / "local"), segmenter, progress=False
    )
    print(
        f"local: model load {load:.1f} s; {n} images in {summary.seconds:.1f} s = "
        f"{n / summary.seconds:.3f} images/s ({summary.seconds / n:.2f} s/image)",
        flush=True,
    )
    segmenter.close()

    settings = ray_annotate.SegmenterSettings(
        str(model), tuple(segmenter.class_names), speed, 0.5, None, "cpu"
    )
    for workers in (1, 2):
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        up = time.perf_counter() - t0
        stamps: list[float] = []
        finish = ray_annotate._finish

        def timed(*args, finish=finish, stamps=stamps):  # type: ignore[no-untyped-def]
            finish(*args)
            stamps.append(time.perf_counter())

        ray_annotate._finish = timed
        t1 = time.perf_counter()
        summary, where = ray_annotate.annotate_on_ray(
            Project.open(folder, annotation_dir=work / f"ray{workers}"),
            settings,
            workers=workers,
            progress=False,
        )
        total = time.perf_counter() - t1
        ray_annotate._finish = finish
        ray.shutdown()
        steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        print(
            f"ray {workers} actor(s) [{where}]: ray.init {up:.1f} s; first image after "
            f"{stamps[0] - t1:.1f} s; steady {1 / steady:.3f} images/s ({steady:.2f} s/image); "
            f"all {len(summary.written)} in {total:.1f} s",
            flush=True,
        )
    shutil.rmtree(work, ignore_errors=True)


class _Nothing:
    def __call__(self, batch: dict) -> dict:
        return {"image": batch["image"], "error": batch["error"]}


def overhead() -> None:
    import ray

    from scubasteve.inference.ray_annotate import _decode
    from scubasteve.io.images import load_image

    n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    paths = sorted(IMAGES.iterdir())[:n]
    t0 = time.perf_counter()
    for p in paths:
        load_image(p)
    local = time.perf_counter() - t0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    for attempt in (1, 2):  # the second pass runs with Ray warm
        t0 = time.perf_counter()
        rows = [{"image": str(p), "source": str(p)} for p in paths]
        ds = ray.data.from_items(rows, override_num_blocks=n)
        ds = ds.map(_decode).map_batches(
            _Nothing, batch_size=1, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1
        )
        stamps = [time.perf_counter() for _ in ds.iter_rows()]
        total = time.perf_counter() - t0
        steady = (stamps[-1] - stamps[0]) / (n - 1)
        print(
            f"pass {attempt}: {n} images decoded locally {local / n * 1000:.1f} ms/image; through "
            f"Ray {total:.1f} s in all, first row after {stamps[0] - t0:.1f} s, then "
            f"{steady * 1000:.1f} ms/image",
            flush=True,
        )
    ray.shutdown()


if __name__ == "__main__":
    overhead() if sys.argv[1:2] == ["overhead"] else main()
