"""`scubasteve bench deepmask-precision`: DeepMask in bfloat16 against float32 on the same weights.

One network, two engines (`bf16=False` and `bf16=True`), the same images and prompt boxes. For each
box it compares the ten proposals (mask IoU of the two top-1 masks, of proposals of the same rank,
and whether both chose the same window); for each image it compares the objectness of every window
of every cached pyramid level (Spearman rank correlation, and the share of float32's 100 best
windows that are also among bfloat16's 100 best: the order that whole-image mode ranks by). Prints
a table; never pass/fail.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.inference.base import patch_iou


def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(x.size, dtype=np.float64)
    r[np.argsort(x, kind="stable")] = np.arange(x.size)
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long score vectors (ties broken by position)."""
    ra, rb = _ranks(a.ravel()), _ranks(b.ravel())
    if ra.size < 2:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def top_overlap(a: np.ndarray, b: np.ndarray, n: int = 100) -> float:
    """Share of the `n` highest entries of `a` that are also among the `n` highest of `b`."""
    n = min(n, a.size)
    ta = set(np.argsort(-a.ravel(), kind="stable")[:n].tolist())
    tb = set(np.argsort(-b.ravel(), kind="stable")[:n].tolist())
    return len(ta & tb) / max(n, 1)


def _network(args: argparse.Namespace, device: str) -> tuple[Any, Any, dict[str, Any], str]:
    import torch

    from scubasteve.inference.deepmask import network as N
    from scubasteve.inference.deepmask.checkpoint import build_model
    from scubasteve.inference.deepmask.config import DeepMaskConfig, tiny_config
    from scubasteve.inference.deepmask.weights import load_weights_file
    from scubasteve.weights import resolve_weights

    if args.weights:
        path = resolve_weights(args.weights)
        loaded = load_weights_file(path)
        return build_model(loaded, device, path), loaded.config, dict(loaded.meta), path.name
    torch.manual_seed(args.seed)
    cfg = DeepMaskConfig() if args.random == "resnet50" else tiny_config()
    net = N.build_network(cfg).eval()
    with torch.no_grad():  # batch norms as a trained network has them, not the identity of init
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return net.to(device), cfg, {}, f"random {args.random} (seed {args.seed})"


def run(args: argparse.Namespace) -> int:
    import torch

    from scubasteve.bench.samples import load_coco_samples
    from scubasteve.inference.deepmask.features import dense_scores
    from scubasteve.inference.deepmask.proposer import DeepMaskOptions, DeepMaskProposer
    from scubasteve.inference.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device).device
    net, cfg, meta, what = _network(args, device)
    engines = {
        bf16: DeepMaskProposer(net, cfg, device, DeepMaskOptions(bf16=bf16), meta)
        for bf16 in (False, True)
    }
    images = load_coco_samples(
        Path(args.coco), Path(args.images), limit=args.limit, max_side=args.max_side
    )
    top1, same_rank, same_window, spear, overlap = [], [], [], [], []
    seconds = {False: 0.0, True: 0.0}
    for image in images:
        rgb = image.load()
        for bf16, eng in engines.items():
            t0 = time.perf_counter()
            eng.set_image(rgb)
            seconds[bf16] += time.perf_counter() - t0
        levels = sorted(set(engines[False]._levels) & set(engines[True]._levels))
        for n in levels:
            a = dense_scores(net, cfg, engines[False]._levels[n], False)
            b = dense_scores(net, cfg, engines[True]._levels[n], True)
            if a.size >= 2:
                spear.append(spearman(a, b))
                overlap.append(top_overlap(a, b))
        for sample in image.samples:
            props = {}
            for bf16, eng in engines.items():
                t0 = time.perf_counter()
                props[bf16] = eng.propose(sample.box, k=10)
                seconds[bf16] += time.perf_counter() - t0
            p32, p16 = props[False], props[True]
            if not p32 or not p16:
                continue
            top1.append(patch_iou(p32[0].patch, p16[0].patch))
            same_window.append(float(p32[0].source == p16[0].source))
            same_rank += [patch_iou(a.patch, b.patch) for a, b in zip(p32, p16, strict=False)]
    _report(args, what, device, images, top1, same_rank, same_window, spear, overlap, seconds)
    return 0


def _report(  # type: ignore[no-untyped-def]
    args, what, device, images, top1, same_rank, same_window, spear, overlap, seconds
) -> None:
    def stats(values: list[float]) -> str:
        if not values:
            return "n/a"
        v = np.asarray(values)
        return f"mean {v.mean():.4f}  p5 {np.percentile(v, 5):.4f}  min {v.min():.4f}"

    print(f"weights: {what}; device: {device}; images: {len(images)}; boxes: {len(top1)}")
    print(f"top-1 mask IoU, bf16 vs fp32:          {stats(top1)}")
    print(
        f"same top-1 window (share):             {np.mean(same_window) if same_window else 0:.3f}"
    )
    print(f"mask IoU at equal rank (all 10):       {stats(same_rank)}")
    print(f"objectness Spearman per level:         {stats(spear)}")
    print(f"top-100 windows shared per level:      {stats(overlap)}")
    print(f"seconds (set_image + propose): fp32 {seconds[False]:.1f}, bf16 {seconds[True]:.1f}")
