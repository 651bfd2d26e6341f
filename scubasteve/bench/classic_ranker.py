"""Fit and check the classic engine's ranking coefficients (a developer tool, not a user command).

    python -m scubasteve.bench.classic_ranker --coco ../shared/data/coco128-seg/instances.json \\
        --images ../shared/data/coco128-seg/images \\
        --labelme ../shared/data/labelme-tony607 --labelme ../shared/data/labelme-examples

Collects every candidate of the classic engine with its ranking features and its true IoU, fits a
ridge regression of the IoU on the features using the COCO images of even position only (prompt
boxes grown by a random 0..10 % per side, so that the ranking does not learn one box margin), and
reports top-ranked and best-of-k IoU on the odd-position images and on the LabelMe folders, which
were not used for fitting. Prints the coefficients to paste into `inference/classic/ranking.py`.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scubasteve.bench.samples import (
    SampleImage,
    every_nth,
    load_coco_samples,
    load_labelme_samples,
)
from scubasteve.inference.base import patch_iou
from scubasteve.inference.classic import ranking
from scubasteve.inference.classic.proposer import ClassicProposer, honours_clicks


@dataclass
class Group:
    """One object's candidates: features (n, F), true IoUs (n,), pairwise working IoUs (n, n)."""

    x: np.ndarray
    iou: np.ndarray
    pair: np.ndarray


def collect(images: Sequence[SampleImage], grow: tuple[float, float], seed: int = 0) -> list[Group]:
    rng = random.Random(seed)
    proposer = ClassicProposer()
    groups = []
    for si in images:
        proposer.set_image(si.load())
        cache = proposer.cache
        assert cache is not None
        for s in si.samples:
            g = rng.uniform(*grow)
            box = s.gt.box().grow(g).clip(si.width, si.height)
            crop = proposer.crop(cache, box)
            pool = []
            for c in proposer.candidates(cache, crop, box):
                new = not any(np.array_equal(c.mask, p.mask) for p in pool)
                if c.mask.any() and honours_clicks(crop, c.mask) and new:
                    pool.append(c)
            masks = [c.mask for c in pool]
            agree = ranking.mean_agreement(masks)
            x = np.stack(
                [
                    ranking.features(crop, c.mask, c.family, float(a))
                    for c, a in zip(pool, agree, strict=True)
                ]
            )
            iou = np.array(
                [
                    patch_iou(c.patch or crop.frame.to_patch(c.mask, guide=crop.guide), s.gt)
                    for c in pool
                ]
            )
            flat = np.stack([m.ravel() for m in masks]).astype(np.float32)
            inter = flat @ flat.T
            area = np.diag(inter)
            pair = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
            groups.append(Group(x, iou, pair))
    return groups


def fit(groups: Sequence[Group], l2: float = 1e-2) -> dict[str, float]:
    x = np.concatenate([g.x for g in groups])
    y = np.concatenate([g.iou for g in groups])
    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs = (x - mu) / sd
    a = xs.T @ xs / len(y) + l2 * np.eye(x.shape[1])
    w = np.linalg.solve(a, xs.T @ (y - y.mean()) / len(y))
    coefs = w / sd
    bias = float(y.mean() - mu @ coefs)
    return {"bias": bias} | {n: float(c) for n, c in zip(ranking.FEATURES, coefs, strict=True)}


def evaluate(groups: Sequence[Group], coefs: dict[str, float], k: int = 10, dup: float = 0.9):
    """(mean IoU of the top-ranked, mean IoU of the best of the k kept) under a ranking."""
    top, best = [], []
    for g in groups:
        scores = np.array([ranking.score(row, coefs) for row in g.x])
        kept: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if all(g.pair[i, j] <= dup for j in kept):
                kept.append(int(i))
                if len(kept) >= k:
                    break
        top.append(g.iou[kept[0]])
        best.append(g.iou[kept].max())
    return float(np.mean(top)), float(np.mean(best))


def _dump(label: str, groups: Sequence[Group]) -> None:
    """Keep the collected groups for quick re-fits (developer convenience)."""
    import os
    import pickle

    folder = os.environ.get("SCUBASTEVE_RANKER_DUMP")
    if folder:
        name = "".join(ch if ch.isalnum() else "_" for ch in label)
        with open(Path(folder) / (name + ".pkl"), "wb") as f:
            pickle.dump(list(groups), f)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coco", type=Path, required=True)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--labelme", type=Path, action="append", default=[])
    ap.add_argument(
        "--large-coco",
        type=Path,
        default=None,
        help="a second COCO file (large objects, e.g. davis345): even objects join the fit",
    )
    ap.add_argument("--large-images", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)

    coco = load_coco_samples(args.coco, args.images, limit=args.limit)
    train = collect(coco[0::2], (0.0, 0.10), seed=0)
    held = collect(coco[1::2], (0.05, 0.05))
    reports = {"coco held-out": held}
    fitted = train
    if args.large_coco is not None:
        large = load_coco_samples(args.large_coco, args.large_images, limit=args.limit)
        large_train = collect(every_nth(large, 2, 0), (0.0, 0.10), seed=1)
        reports["large fit half"] = large_train
        reports["large held-out"] = collect(every_nth(large, 2, 1), (0.05, 0.05))
        fitted = train + large_train
    unseen = {str(p): collect(load_labelme_samples(p), (0.05, 0.05)) for p in args.labelme}
    coefs = fit(fitted)
    print("COEFFICIENTS = {")
    for name, value in coefs.items():
        print(f'    "{name}": {value:.4f},')
    print("}")
    for label, groups in [("coco fit half", train), *reports.items(), *unseen.items()]:
        oracle = float(np.mean([g.iou.max() for g in groups]))
        cur = evaluate(groups, ranking.COEFFICIENTS)
        new = evaluate(groups, coefs)
        _dump(label, groups)
        print(
            f"{label}: n={len(groups)} oracle-all={oracle:.3f} "
            f"current top/best10={cur[0]:.3f}/{cur[1]:.3f} "
            f"fitted top/best10={new[0]:.3f}/{new[1]:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
