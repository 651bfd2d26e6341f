"""Time one 1024 px IS-Net pass: our PyTorch network against rembg's ONNX Runtime session.

rembg (danielgatis/rembg) runs the same network through ONNX Runtime; its `dis_custom` session
takes a model file, so both sides run the same weights (the fp16 file of ../shared/models). rembg
is not a dependency of Scuba Steve: install it in a separate virtual environment and run this
script once with each Python, on the same image, in one shell command:

    python3 -m venv /tmp/rembg && /tmp/rembg/bin/pip install rembg onnxruntime
    MODEL=../shared/models/isnet-general-use-fp16.onnx
    /tmp/rembg/bin/python scripts/bench_isnet_rembg.py rembg $MODEL IMAGE && \\
        .venv/bin/python scripts/bench_isnet_rembg.py ours $MODEL IMAGE

Each prints one JSON line: the median and minimum of `--repeat` timed passes after one warm-up,
with 2 threads (`--threads`). "network" is the pass alone; "call" adds each tool's own pre- and
post-processing of a whole image (rembg's `predict`; for ours, `IsnetProposer.propose` on a box
covering the image at input size 1024).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm-up (first-call allocations, kernel selection)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}


def rembg_side(model: str, image_path: str, threads: int, repeat: int) -> dict[str, object]:
    import onnxruntime as ort
    from PIL import Image
    from rembg import new_session

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # rembg loads custom models only from its own folder (U2NET_HOME): link the file there.
    home = Path(tempfile.mkdtemp(prefix="rembg-home-"))
    os.environ["U2NET_HOME"] = str(home)
    (home / Path(model).name).symlink_to(Path(model).resolve())
    session = new_session("dis_custom", model_path=str(home / Path(model).name), sess_opts=options)
    image = Image.open(image_path).convert("RGB")
    x = session.normalize(image, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (1024, 1024))
    return {
        "tool": "rembg " + _version("rembg") + " (onnxruntime " + ort.__version__ + ")",
        "network": _timed(lambda: session.inner_session.run(None, x), repeat),
        "call": _timed(lambda: session.predict(image), repeat),
    }


def ours_side(model: str, image_path: str, threads: int, repeat: int) -> dict[str, object]:
    import torch

    from scubasteve.core.geometry import Box
    from scubasteve.inference.isnet import proposer_from_file
    from scubasteve.inference.isnet.crops import Window, extract
    from scubasteve.inference.isnet.proposer import IsnetOptions
    from scubasteve.io.images import load_image

    torch.set_num_threads(threads)
    image = load_image(image_path)
    h, w = image.shape[:2]
    out: dict[str, object] = {"tool": f"scubasteve (torch {torch.__version__})"}
    crop = extract(image, Window(0, 0, w, h), 1024)
    for bf16 in (True, False):
        engine = proposer_from_file(model, "cpu", IsnetOptions(input_size=1024, bf16=bf16))
        engine.set_image(image)
        label = "bf16" if bf16 else "float32"
        out[f"network_{label}"] = _timed(lambda engine=engine: engine.run(crop), repeat)

        def call(engine=engine) -> object:
            engine.set_image(image)  # no cached map: a full request each time
            return engine.propose(Box(0, 0, w, h))

        out[f"call_{label}"] = _timed(call, repeat)
    out["bf16_fast_here"] = bool(torch.backends.mkldnn.is_available())
    return out


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("side", choices=("rembg", "ours"))
    ap.add_argument("model", help="the IS-Net ONNX file (both sides read the same file)")
    ap.add_argument("image")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    side = rembg_side if args.side == "rembg" else ours_side
    result = side(args.model, args.image, args.threads, args.repeat)
    result["threads"] = args.threads
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
