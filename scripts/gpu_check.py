"""One check of the CUDA paths on a GPU: device choice, DeepMask inference and training, SAM 2.

    PYTHONUNBUFFERED=1 python scripts/gpu_check.py --device cuda --log gpu.log [--budget 400]
    python scripts/gpu_check.py --tiny --device cpu      # the same steps, tiny sizes (a dry run)

Every step runs in its own Python process under a time limit (and all of them within `--budget`
seconds), so a step that hangs or crashes the CUDA context is reported and the next one runs.
Each prints JSON lines as it measures; the log gets them all. Steps, most wanted first:

- device: what `resolve_device` picks (auto, cuda, cuda:1, cpu) and the versions.
- deepmask: the DeepMask engine (random-init ResNet-50, or the tiny network with --tiny) at
  640x480 and 854x480: set_image, first proposal and all ten for ten boxes (p50/p90 over repeats
  after a warm-up), float32 and bfloat16 trunk; a whole-image pass; a SharpMask in float32.
- sam2: the SAM 2 engine on a random-init SAM 2.1 hiera-tiny checkpoint in upstream's format:
  set_image (a new image each time), first proposal, all ten, one click; bf16 (the CUDA default)
  and float32. sam2_large: hiera-large, bf16 only. sam2_threads: encoder passes on the calling
  thread, on a new thread each and through `prefetch`'s worker.
- train: samples/s of DeepMask training steps (`measure_throughput`, sampling included) and of
  the network alone on a fixed batch, float32 and bf16.
- nccl1: `train deepmask` through the `--workers` launcher at world size 1 (NCCL on CUDA).
- workers2: `train deepmask --workers 2` on this machine (refused when it has fewer GPUs);
  workers2_unguarded: the same with that check switched off, to see what NCCL does then.
- train_cli: `scubasteve train deepmask` for a few hundred steps on synthetic LabelMe data, then
  `--resume` for one more epoch.

Needs the package's dependencies and the `sam` extra (sam2, hydra-core, omegaconf, antlr4, iopath);
synthetic data comes from tests/helpers. Results: docs/gpu-check-h200.jsonl and the "Measured on a
GPU" sections of docs/deepmask.md, docs/sam2.md and docs/scale.md.

Timings are wall clock with `torch.cuda.synchronize()` before each clock read. Cost does not depend
on the weights, so random weights measure what trained ones would. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests"):  # the package, and tests/helpers for synthetic data
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

T0 = time.perf_counter()
STEP = os.environ.get("GPU_CHECK_STEP", "")  # also in the processes a step's launcher spawns


def emit(**record: Any) -> None:
    print(json.dumps({"step": STEP, "t": round(time.perf_counter() - T0, 2), **record}), flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(device: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[float, Any]:
    """(milliseconds, result) of `fn(*args, **kw)`, the GPU's queue drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    sync(device)
    return 1000 * (time.perf_counter() - t0), out


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if not a.size:
        return {"n": 0}
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 2),
            "p90": round(float(np.percentile(a, 90)), 2), "min": round(float(a.min()), 2)}  # fmt: skip


def peak_memory(device: str) -> dict[str, float]:
    if not device.startswith("cuda"):
        return {}
    import torch

    return {"peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)}


def scene(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A textured image with a few filled shapes (tests/helpers' generator), RGB uint8."""
    from helpers.deepmask_data import shapes_image

    img, _ = shapes_image(seed, h, w, seed)
    for k in range(1, 4):
        other, mask = shapes_image(k, h, w, seed)
        img[mask] = other[mask]
    return img


def boxes_for(w: int, h: int, n: int) -> list[Any]:
    """`n` boxes of 8 % .. 70 % of the shorter side at spread-out centres (small ones need local
    trunk passes in DeepMask, large ones come from cached levels)."""
    from scubasteve.core.geometry import Box

    out = []
    for i in range(n):
        side = min(w, h) * (0.08 + 0.62 * i / max(1, n - 1))
        cx = w * (0.3 + 0.4 * ((i * 7) % n) / max(1, n - 1))
        cy = h * (0.35 + 0.3 * ((i * 3) % n) / max(1, n - 1))
        out.append(Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2).clip(w, h))
    return out


def time_proposals(engine: Any, device: str, boxes: list[Any], reps: int, **kw: Any) -> dict:
    """First-proposal and all-ten milliseconds over `reps` passes of `boxes` (after one warm-up).

    Each pass moves the boxes by a pixel, as a new box would be: DeepMask keeps the local canvases
    of recent box centres, and a repeated box would be served from them."""
    firsts: list[float] = []
    alls: list[float] = []
    local: list[float] = []
    cached: list[float] = []
    counts: list[int] = []
    for rep in range(reps + 1):
        for b in boxes:
            box = type(b)(b.x0 + rep, b.y0 + rep, b.x1 + rep, b.y1 + rep)
            got: list[float] = []
            sync(device)
            t0 = time.perf_counter()

            def first(_p: Any, t0: float = t0, got: list[float] = got) -> None:
                if not got:
                    got.append(1000 * (time.perf_counter() - t0))

            props = engine.propose(box, on_proposal=first, **kw)
            ms = 1000 * (time.perf_counter() - t0)
            if rep:
                alls.append(ms)
                firsts.append(got[0] if got else ms)
                counts.append(len(props))
                passes = getattr(engine, "last_trunk_passes", None)
                if passes is not None:
                    (local if passes else cached).append(ms)
    out = {"first_ms": stats(firsts), "all_ms": stats(alls)}
    if local or cached:
        out.update(cached_levels_ms=stats(cached), local_trunk_ms=stats(local))
    return {**out, "proposals_min": min(counts) if counts else 0}


# --- steps ---------------------------------------------------------------------------------------


def step_device(a: argparse.Namespace) -> None:
    import torch

    from scubasteve.inference.device import bf16_is_fast, resolve_device

    info: dict[str, Any] = {"torch": torch.__version__, "numpy": np.__version__,
                            "python": sys.version.split()[0], "cuda": torch.version.cuda}  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["capability"] = list(torch.cuda.get_device_capability(0))
        info["gpus"] = torch.cuda.device_count()
        v = torch.cuda.nccl.version()
        info["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    emit(**info)
    for req in ("auto", "cuda", "cuda:0", "cuda:1", "cpu"):
        c = resolve_device(req)
        emit(requested=req, device=c.device, reason=c.reason)
    emit(bf16_is_fast=bf16_is_fast(a.device), cudnn_tf32=torch.backends.cudnn.allow_tf32,
         matmul_tf32=torch.backends.cuda.matmul.allow_tf32)  # fmt: skip


def _deepmask_file(tmp: Path, tiny: bool, sharpmask: bool) -> Path:
    import torch

    from scubasteve.inference.deepmask.checkpoint import save_weights
    from scubasteve.inference.deepmask.config import DeepMaskConfig, tiny_config
    from scubasteve.inference.deepmask.network import build_network

    cfg = tiny_config(sharpmask=sharpmask) if tiny else DeepMaskConfig(sharpmask=sharpmask)
    torch.manual_seed(0)
    path = tmp / f"{'sharp' if sharpmask else 'deep'}mask.pt"
    return save_weights(path, build_network(cfg).eval().state_dict(), cfg, {"trained": "random"})


def step_deepmask(a: argparse.Namespace) -> None:
    from scubasteve.inference.deepmask import proposer_from_file
    from scubasteve.inference.deepmask.proposer import DeepMaskOptions

    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-dm-"))
    sizes = [(160, 120), (214, 120)] if a.tiny else [(640, 480), (854, 480)]
    reps = 1 if a.tiny else a.reps
    plan = [(False, False), (False, True), (True, False)]  # (sharpmask, bf16)
    for sharp, bf16 in plan:
        path = _deepmask_file(tmp, a.tiny, sharp)
        ms, engine = timed(a.device, proposer_from_file, path, a.device, DeepMaskOptions(bf16=bf16))
        emit(model="sharpmask" if sharp else "deepmask", bf16=engine.bf16, load_ms=round(ms),
             device=engine.meta["device"])  # fmt: skip
        for w, h in sizes[-1:] if sharp else sizes:
            image = scene(w, h)
            sets = [timed(a.device, engine.set_image, image)[0] for _ in range(reps + 1)]
            result = time_proposals(engine, a.device, boxes_for(w, h, 10), reps)
            emit(model="sharpmask" if sharp else "deepmask", bf16=engine.bf16, image=f"{w}x{h}",
                 set_image_ms=stats(sets[1:]), levels=len(engine.last_set_image.levels),
                 **result, **peak_memory(a.device))  # fmt: skip
        if not sharp:
            ms, props = timed(a.device, engine.propose_image, k=100)
            ms2, props = timed(a.device, engine.propose_image, k=100)
            emit(model="deepmask", bf16=engine.bf16, whole_image=f"{w}x{h}",
                 first_ms=round(ms), second_ms=round(ms2), proposals=len(props))  # fmt: skip


def _sam2_file(tmp: Path, config: str) -> Path:
    import torch
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2(config, None, device="cpu")
    path = tmp / (Path(config).stem + ".pt")
    torch.save({"model": model.state_dict()}, path)
    return path


def _sam2(a: argparse.Namespace, config: str, precisions: list[bool | None]) -> None:
    from scubasteve.inference.base import PromptPoint
    from scubasteve.inference.sam2 import proposer_from_file
    from scubasteve.inference.sam2.proposer import Sam2Options

    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-sam2-"))
    t0 = time.perf_counter()
    path = _sam2_file(tmp, config)
    emit(checkpoint=path.name, mb=round(path.stat().st_size / 2**20),
         build_s=round(time.perf_counter() - t0, 1))  # fmt: skip
    sizes = [(160, 120)] if a.tiny else [(640, 480), (1024, 768)]
    reps = 1 if a.tiny else max(2, a.reps // 2)
    for bf16 in precisions:
        ms, engine = timed(a.device, proposer_from_file, path, a.device, Sam2Options(bf16=bf16))
        emit(variant=engine.meta["variant"], bf16=engine.bf16, load_ms=round(ms),
             device=engine.meta["device"])  # fmt: skip
        for w, h in sizes:
            base = scene(w, h)
            sets = []
            for i in range(reps + 1):  # a new image each time: the embedding cache keys on pixels
                image = base.copy()
                image[0, 0] = (i, 7, 9)
                sets.append(timed(a.device, engine.set_image, image)[0])
            boxes = boxes_for(w, h, 2 if a.tiny else 5)[1:]
            result = time_proposals(engine, a.device, boxes, reps)
            clicks = []
            for rep in range(reps + 1):
                for box in boxes:
                    engine.propose(box)
                    click = [PromptPoint(*box.center, True)]
                    ms, _ = timed(a.device, engine.propose, box, points=click)
                    if rep:
                        clicks.append(ms)
            nxt = base.copy()
            nxt[0, 0] = (255, 1, 2)
            t1 = time.perf_counter()
            future = engine.prefetch(nxt)
            if future is not None:
                future.result()
            prefetch_ms = 1000 * (time.perf_counter() - t1)
            hit_ms, _ = timed(a.device, engine.set_image, nxt)
            emit(variant=engine.meta["variant"], bf16=engine.bf16, image=f"{w}x{h}",
                 set_image_ms=stats(sets[1:]), click_ms=stats(clicks), prefetch_ms=round(prefetch_ms),
                 set_image_after_prefetch_ms=round(hit_ms, 2), **result,
                 **peak_memory(a.device))  # fmt: skip


SAM2_TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"


def step_sam2(a: argparse.Namespace) -> None:
    _sam2(a, SAM2_TINY, [None] if a.tiny else [None, False])


def step_sam2_large(a: argparse.Namespace) -> None:
    _sam2(a, "configs/sam2.1/sam2.1_hiera_l.yaml", [None])


def step_sam2_threads(a: argparse.Namespace) -> None:
    """SAM 2 encoder passes on the calling thread, on a new thread each, and through `prefetch`
    (one worker thread per engine), three of each: what a thread's first pass costs."""
    from scubasteve.inference.sam2 import proposer_from_file
    from scubasteve.inference.sam2.proposer import Sam2Options

    path = _sam2_file(Path(tempfile.mkdtemp(prefix="gpu-check-sam2t-")), SAM2_TINY)
    w, h = (160, 120) if a.tiny else (640, 480)
    base = scene(w, h)
    for bf16 in [None] if a.tiny else [None, False]:
        engine = proposer_from_file(path, a.device, Sam2Options(bf16=bf16))
        engine.set_image(base)
        images = [base.copy() for _ in range(9)]
        for i, im in enumerate(images):
            im[0, 0] = (i, 200, 100)

        def on_new_thread(im: np.ndarray, engine: Any = engine) -> None:
            t = threading.Thread(target=engine._encode, args=(im,))
            t.start()
            t.join()

        caller = [timed(a.device, engine._encode, im)[0] for im in images[:3]]
        fresh = [timed(a.device, on_new_thread, im)[0] for im in images[3:6]]
        worker = []
        for im in images[6:]:
            t0 = time.perf_counter()
            future = engine.prefetch(im)
            if future is not None:
                future.result()
            worker.append(1000 * (time.perf_counter() - t0))
        emit(bf16=engine.bf16, image=f"{w}x{h}", calling_thread_ms=[round(x, 1) for x in caller],
             new_thread_each_ms=[round(x, 1) for x in fresh],
             prefetch_worker_ms=[round(x, 1) for x in worker])  # fmt: skip


def step_train(a: argparse.Namespace) -> None:
    import torch
    from helpers.deepmask_data import shapes_docs

    from scubasteve.bench.training import measure_throughput
    from scubasteve.inference.deepmask.config import DeepMaskConfig, tiny_config
    from scubasteve.inference.deepmask.network import build_network
    from scubasteve.training.deepmask.data import SampleSource, collect_instances
    from scubasteve.training.deepmask.trainer import Trainer, TrainOptions

    cfg = tiny_config() if a.tiny else DeepMaskConfig()
    docs = shapes_docs(24, 240, 320)
    src = SampleSource(docs, collect_instances(docs)[0], cfg)
    batch, steps = (8, 3) if a.tiny else (32, a.train_steps)
    torch.manual_seed(0)
    net = build_network(cfg)
    for bf16 in (False, True):
        tp = measure_throughput(net, cfg, src, a.device, batch, steps, bf16)
        emit(kind="steps with sampling", bf16=bf16, batch=batch, input_px=cfg.input_size,
             steps=steps, **{k: round(v, 1) for k, v in tp.items()})  # fmt: skip
        t_sample = time.perf_counter()
        for _ in range(max(1, steps // 4)):
            src.mask_batch(np.random.default_rng(0), batch)
        emit(
            kind="sampling alone",
            batch=batch,
            ms_per_batch=round(1000 * (time.perf_counter() - t_sample) / max(1, steps // 4), 1),
        )
        for size in (batch, 4 * batch):  # the network alone, on one fixed batch
            trainer = Trainer(net, cfg, src, None, TrainOptions(batch_size=size, bf16=bf16,
                              precise_bn=0), Path(tempfile.mkdtemp()), a.device)  # fmt: skip
            trainer.net.train()
            inputs, labels = src.mask_batch(trainer.rng, size)
            x = trainer._to_input(inputs)
            _train_steps(trainer, x, labels, 3)
            ms, _ = timed(a.device, _train_steps, trainer, x, labels, steps)
            emit(
                kind="network only (one fixed batch)",
                bf16=bf16,
                batch=size,
                steps=steps,
                samples_per_s=round(size * steps / (ms / 1000), 1),
                **peak_memory(a.device),
            )


def _train_steps(trainer: Any, x: Any, labels: np.ndarray, steps: int) -> None:
    """`steps` mask-loss training steps on one fixed batch (no sampling: the network alone)."""
    for _ in range(steps):
        loss = trainer._mask_loss(x, labels)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()


def _train_args(data: Path, out: Path, a: argparse.Namespace, extra: list[str]) -> list[str]:
    steps = ["--batch-size", "8", "--batches-per-epoch", "3", "--arch", "tiny"] if a.tiny else [
        "--batch-size", "32", "--batches-per-epoch", str(a.cli_steps // 2)]  # fmt: skip
    return ["train", "deepmask", "--labelme", str(data), "--device", a.device, "--epochs", "2",
            "--compare-limit", "0", "--out", str(out), "--name", out.name, *steps, *extra]  # fmt: skip


def _labelme(tmp: Path) -> Path:
    from helpers.deepmask_data import write_labelme_project

    os.environ["SCUBASTEVE_DATA_DIR"] = str(tmp / "data")
    return write_labelme_project(tmp / "project", 24, 240, 320)


def _epochs(out: Path) -> None:
    log = out / "log.jsonl"
    for line in log.read_text().splitlines() if log.is_file() else []:
        r = json.loads(line)
        emit(epoch=r["epoch"], samples_per_s=round(r["samples_per_s"], 1),
             mask_loss=round(r["mask_loss"], 3), val_iou=round(r["val_iou"], 3),
             seconds=round(r["seconds"], 1))  # fmt: skip


def step_train_cli(a: argparse.Namespace) -> None:
    from scubasteve.cli import main

    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-train-"))
    data = _labelme(tmp)
    t0 = time.perf_counter()
    code = main(_train_args(data, tmp / "cli", a, []))
    emit(exit=code, wall_s=round(time.perf_counter() - t0, 1))
    t0 = time.perf_counter()  # continue the finished run for one more epoch (state.pt from CUDA)
    code = main(_train_args(data, tmp / "cli", a, ["--epochs", "3", "--resume"]))
    emit(resumed_exit=code, wall_s=round(time.perf_counter() - t0, 1))
    _epochs(tmp / "cli")


def _ranked_run(args: argparse.Namespace, *rest: Any) -> int:
    """The training of one process of the group, reporting the group's backend first."""
    import torch.distributed as dist

    from scubasteve.cli.train.deepmask import _run

    emit(rank=dist.get_rank(), world=dist.get_world_size(), backend=dist.get_backend())
    return _run(args, *rest)


def _launch(a: argparse.Namespace, workers: int, guarded: bool) -> None:
    from scubasteve.cli import build_parser
    from scubasteve.core.errors import ScubaSteveError
    from scubasteve.training.deepmask import distributed as D

    if not guarded:
        D.check_gpus = lambda device, workers: None  # type: ignore[assignment]
    tmp = Path(tempfile.mkdtemp(prefix=f"gpu-check-w{workers}-"))
    data = _labelme(tmp)
    out = tmp / f"w{workers}"
    args = build_parser().parse_args(_train_args(data, out, a, ["--workers", str(workers)]))
    t0 = time.perf_counter()
    try:
        code: Any = D.launch(args, workers, _ranked_run, False, None, "DeepMask")
    except (ScubaSteveError, RuntimeError) as exc:
        code = f"{type(exc).__name__}: {str(exc)[-1500:]}"
    emit(workers=workers, guarded=guarded, result=code, wall_s=round(time.perf_counter() - t0, 1))
    _epochs(out)


def step_nccl1(a: argparse.Namespace) -> None:
    _launch(a, 1, True)


def step_workers2(a: argparse.Namespace) -> None:
    _launch(a, 2, True)


def step_workers2_unguarded(a: argparse.Namespace) -> None:
    _launch(a, 2, False)


#: name -> (function, time limit in seconds), most wanted first.
STEPS: dict[str, tuple[Callable[[argparse.Namespace], None], int]] = {
    "device": (step_device, 40),
    "deepmask": (step_deepmask, 110),
    "sam2": (step_sam2, 90),
    "train": (step_train, 80),
    "nccl1": (step_nccl1, 80),
    "workers2": (step_workers2, 50),
    "train_cli": (step_train_cli, 90),
    "workers2_unguarded": (step_workers2_unguarded, 70),
    "sam2_large": (step_sam2_large, 80),
    "sam2_threads": (step_sam2_threads, 60),
}


# --- the runner ----------------------------------------------------------------------------------


def run_step(name: str, argv: list[str], limit: float, log: Any) -> None:
    """Run one step in a child process (its own session, so a timeout kills all it started)."""
    cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--step", name, *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            log.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    t0 = time.perf_counter()
    try:
        code: Any = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = f"timed out after {limit:.0f} s"
    reader.join(timeout=5)
    line = json.dumps({"step": name, "done": code, "wall_s": round(time.perf_counter() - t0, 1)})
    print(line, flush=True)
    log.write(line + "\n")
    log.flush()


def main() -> None:
    global STEP
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny networks and images (a dry run)")
    ap.add_argument("--only", default="", help="comma-separated steps (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out")
    ap.add_argument("--budget", type=float, default=400, help="seconds for all steps together")
    ap.add_argument("--reps", type=int, default=10, help="timed passes over the boxes")
    ap.add_argument("--train-steps", type=int, default=40, help="timed steps per throughput")
    ap.add_argument("--cli-steps", type=int, default=200, help="steps of train_cli (2 epochs)")
    ap.add_argument("--log", type=Path, default=None, help="append every JSON line here")
    ap.add_argument("--step", default="", help=argparse.SUPPRESS)  # a child: run this step
    a = ap.parse_args()
    if a.step:
        STEP = os.environ["GPU_CHECK_STEP"] = a.step
        try:
            STEPS[a.step][0](a)
        except Exception as exc:
            import traceback

            emit(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:])
            raise SystemExit(1) from exc
        return
    names = [n for n in (a.only.split(",") if a.only else STEPS) if n not in a.skip.split(",")]
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        ap.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    argv = sys.argv[1:]
    deadline = time.perf_counter() + a.budget
    log = open(a.log, "a", encoding="utf-8") if a.log else open(os.devnull, "w")  # noqa: SIM115
    with log:
        for name in names:
            left = deadline - time.perf_counter()
            if left < 15:
                print(json.dumps({"step": name, "done": "skipped: budget spent"}), flush=True)
                continue
            run_step(name, argv, min(STEPS[name][1] * (3 if a.tiny else 1), left), log)


if __name__ == "__main__":
    main()
