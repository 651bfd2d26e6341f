"""Cost of fine-tuning IS-Net at one input size: samples per second and peak memory (issue 24).

Trains one epoch on the first `--objects` objects of a COCO file (box crops as `train isnet` makes
them) with `--threads` CPU threads and prints one JSON line: the size, samples/s, seconds per 100
objects and the process's peak resident memory. Run once per size, each in its own process (peak
memory only grows within a process):

    for s in 320 384 512; do python scripts/isnet_train_cost.py --coco ../shared/data/coco128-seg/instances.json \\
        --images ../shared/data/coco128-seg/images --weights ../shared/models/isnet-general-use-fp16.onnx \\
        --input-size $s; done
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line does
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coco", type=Path, required=True)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input-size", type=int, default=384)
    ap.add_argument("--objects", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from scubasteve.inference.isnet import proposer_from_file
    from scubasteve.training.deepmask.run import load_dataset
    from scubasteve.training.isnet.data import BoxCrops, box_objects
    from scubasteve.training.isnet.trainer import IsnetTrainer, IsnetTrainOptions

    torch.set_num_threads(args.threads)
    docs = load_dataset(args.coco, args.images).docs[::2]  # the training half
    objects = box_objects(docs)[: args.objects]
    options = IsnetTrainOptions(input_size=args.input_size, epochs=1, batch_size=args.batch_size)
    network = proposer_from_file(args.weights, "cpu")
    with tempfile.TemporaryDirectory() as run_dir:
        crops = BoxCrops(docs, options.input_size, options.context, options.grow)
        trainer = IsnetTrainer(network.net, crops, objects, options, Path(run_dir), "cpu")
        record = trainer.train()
    epoch = record.history[-1]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "input_size": args.input_size,
                "threads": args.threads,
                "objects": epoch.samples,
                "samples_per_s": round(epoch.samples / epoch.seconds, 2),
                "s_per_100_objects": round(100 * epoch.seconds / epoch.samples, 1),
                "peak_rss_mib": round(peak_kib / 1024),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
