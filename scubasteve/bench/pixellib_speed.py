"""Seconds per image of a PixelLib model at each speed preset.

    scubasteve bench pixellib-speed --model mask_rcnn_coco --images DIR [--limit 5]
    scubasteve bench pixellib-speed --random resnet101 --images DIR

`--random BACKBONE` builds a COCO-shaped (81-class) Mask R-CNN with random weights first, so the
timing of the real topology can be measured without downloading its weights. The first image of
each preset is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    """`scubasteve bench pixellib-speed` (options in cli/bench.py): load, time, print the table."""
    from scubasteve.core.labels import COCO80
    from scubasteve.core.project import scan_images
    from scubasteve.inference.maskrcnn.model import MaskRCNNSpec, save_random_weights
    from scubasteve.inference.maskrcnn.segmenter import InstanceSegmenter
    from scubasteve.io.images import load_image

    images = [load_image(path) for path in scan_images(args.images)[: args.limit + 1]]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.random:
            model = save_random_weights(
                Path(tmp) / "random.h5", MaskRCNNSpec(args.random, COCO80), image_dim=1024
            )
        started = time.perf_counter()
        segmenter = InstanceSegmenter(model, min_score=0.5, device=args.device)
        device = segmenter.device_description()
        print(f"model loaded in {time.perf_counter() - started:.1f} s; {device}")
        print("| speed | s/image (median) | min | max | images |")
        print("|---|---|---|---|---|")
        for speed in (int(s) for s in args.speeds.split(",")):
            segmenter.set_speed(speed)
            segmenter.detect(images[0])  # warm-up
            times = []
            for image in images[1:] or images:
                t0 = time.perf_counter()
                segmenter.detect(image)
                times.append(time.perf_counter() - t0)
            print(
                f"| {speed} | {statistics.median(times):.2f} | {min(times):.2f} "
                f"| {max(times):.2f} | {len(times)} |"
            )
        segmenter.close()
    return 0
