"""One process against `--workers N` on the same effective batch, over several seeds: docs/scale.md.

Usage: python scripts/bench_deepmask_ddp.py SEEDS WORKERS... [--repo PATH]
e.g.   python scripts/bench_deepmask_ddp.py 0-4 1 2
Trains the tiny DeepMask (`--arch tiny`) with the settings of tests/test_deepmask_distributed.py on
6 synthetic images for each seed and worker count (the seed also chooses the train/validation
split, so runs are compared seed by seed), and prints the final mask loss and validation IoU of
each run, then per worker count their mean and standard deviation and the mean and standard
deviation of the paired difference to the first worker count. `--repo` runs another checkout's
code (e.g. an older commit unpacked with `git archive`), on the same data.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ["--batch-size", "8", "--batches-per-epoch", "6", "--epochs", "4", "--lr", "5e-3"]


def run(repo: Path, folder: Path, out: Path, workers: int, seed: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    args = ["train", "deepmask", "--labelme", str(folder), "--arch", "tiny", "--device", "cpu"]
    args += [*SETTINGS, "--seed", str(seed), "--compare-limit", "0", "--threads", "1"]
    args += ["--out", str(out), "--name", out.name, "--workers", str(workers)]
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scubasteve", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    return {
        "mask_loss": last["mask_loss"],
        "val_iou": last["val_iou"],
        "s": time.perf_counter() - t0,
    }


def main() -> None:
    argv = sys.argv[1:]
    repo = REPO
    if "--repo" in argv:
        i = argv.index("--repo")
        repo = Path(argv[i + 1]).resolve()
        del argv[i : i + 2]
    first, _, last = argv[0].partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    workers = [int(w) for w in argv[1:]]
    sys.path.insert(0, str(REPO / "tests"))
    from helpers.deepmask_data import write_labelme_project

    work = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    folder = write_labelme_project(work / "p", 6)
    results: dict[int, list[dict[str, float]]] = {w: [] for w in workers}
    for seed in seeds:
        for w in workers:
            r = run(repo, folder, work / f"w{w}-s{seed}", w, seed)
            results[w].append(r)
            print(f"seed {seed} workers {w}: mask loss {r['mask_loss']:.3f} val IoU "
                  f"{r['val_iou']:.3f} ({r['s']:.0f} s)", flush=True)  # fmt: skip
    for w in workers:
        for key in ("mask_loss", "val_iou"):
            values = [r[key] for r in results[w]]
            diffs = [a[key] - b[key] for a, b in zip(results[w], results[workers[0]], strict=True)]
            print(f"workers {w} {key}: mean {statistics.mean(values):.3f} sd "
                  f"{statistics.stdev(values) if len(values) > 1 else 0:.3f}; minus workers "
                  f"{workers[0]}, seed by seed: mean {statistics.mean(diffs):+.3f} sd "
                  f"{statistics.stdev(diffs) if len(diffs) > 1 else 0:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
