"""`scubasteve bench deepmask-whole-image`: time and peak memory of DeepMask's whole-image mode.

Runs `set_image` and `propose_image` (all 7 scales 2^-2.5 .. 2^0.5, levels over the pixel budget in
tiles) on a synthetic image of the given size, with random weights of the published network (the
speed does not depend on what the weights learnt), and prints the time, the trunk passes, the
windows scored per level and the process's peak resident memory. Run it once per size in a fresh
process: the peak is the process's, from its start.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(args: argparse.Namespace) -> int:
    import torch

    from scubasteve.inference.deepmask import network as N
    from scubasteve.inference.deepmask.config import DeepMaskConfig, tiny_config
    from scubasteve.inference.deepmask.proposer import DeepMaskOptions, DeepMaskProposer

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = DeepMaskConfig(sharpmask=args.sharpmask) if not args.tiny else tiny_config()
    options = DeepMaskOptions(
        bf16={"auto": None, "on": True, "off": False}[args.bf16],
        max_canvas_pixels=args.max_canvas_pixels,
    )
    eng = DeepMaskProposer(N.build_network(cfg), cfg, args.device, options)
    width, height = args.size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    base = _peak_rss_mib()
    t0 = time.perf_counter()
    eng.set_image(image)
    t1 = time.perf_counter()
    props = eng.propose_image(k=args.k)
    t2 = time.perf_counter()
    print(
        f"{width}x{height} ({width * height / 1e6:.1f} MP), "
        f"{'SharpMask' if cfg.sharpmask else 'DeepMask'}, bf16 {eng.bf16}, "
        f"pixel budget per pass {options.max_canvas_pixels:,}, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(f"set_image {t1 - t0:.1f} s, propose_image {t2 - t1:.1f} s, {len(props)} proposals")
    print(f"trunk passes in propose_image: {eng.last_trunk_passes}")
    for scale, windows in eng.last_image_levels:
        print(f"  scale {scale:.3f}: {windows:,} windows scored")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB (before the image: {base:.0f} MiB)")
    return 0
