"""`scubasteve segment` on ground-truth boxes: mean mask IoU per engine (README, "Boxes to masks").

Usage:
    python scripts/bench_segment.py boxes GT.json BOXES.json [--every N]
        a copy of the COCO file GT.json with every N-th image, its annotations box-only
    python scripts/bench_segment.py score GT.json SEGMENTED.json
        mean IoU of the masks `scubasteve segment BOXES.json --out SEGMENTED.json` made, against
        GT.json's masks (a box left without a mask counts 0)

e.g.
    python scripts/bench_segment.py boxes ../shared/data/davis345/instances.json /tmp/b.json --every 17
    scubasteve segment /tmp/b.json --images ../shared/data/davis345/images --out /tmp/s.json --engine classic
    python scripts/bench_segment.py score ../shared/data/davis345/instances.json /tmp/s.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def boxes(gt: str, out: str, every: int) -> None:
    with open(gt, encoding="utf-8") as fh:
        data = json.load(fh)
    keep = {img["id"] for i, img in enumerate(data["images"]) if i % every == 0}
    data["images"] = [img for img in data["images"] if img["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    for ann in data["annotations"]:
        ann.pop("segmentation", None)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    print(f"{len(data['images'])} images, {len(data['annotations'])} boxes -> {out}")


def score(gt: str, segmented: str) -> None:
    from pycocotools.coco import COCO

    truth = COCO(gt)
    with open(segmented, encoding="utf-8") as fh:
        made = json.load(fh)["annotations"]
    ious = []
    for ann in made:
        if "segmentation" not in ann:
            ious.append(0.0)
            continue
        mask = truth.annToMask({**ann, "iscrowd": 0}).astype(bool)
        true = truth.annToMask(truth.anns[ann["id"]]).astype(bool)
        ious.append(float((mask & true).sum() / max((mask | true).sum(), 1)))
    values = np.array(ious)
    print(
        f"{len(values)} boxes: mean IoU {values.mean():.3f}, IoU >= 0.90: {(values >= 0.9).mean():.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("boxes")
    b.add_argument("gt")
    b.add_argument("out")
    b.add_argument("--every", type=int, default=1)
    s = sub.add_parser("score")
    s.add_argument("gt")
    s.add_argument("segmented")
    args = parser.parse_args()
    if args.what == "boxes":
        boxes(args.gt, args.out, args.every)
    else:
        score(args.gt, args.segmented)


if __name__ == "__main__":
    main()
