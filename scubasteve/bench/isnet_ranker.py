"""Fit and check the combined IS-Net + classic ranking (a developer tool, not a user command).

    python -m scubasteve.bench.isnet_ranker --weights ../shared/models/isnet-general-use-fp16.onnx \\
        --data ../shared/data [--cache out/isnet-ranker] [--every 1]

Collects every candidate of both engines for every object of coco128-seg and davis345 (and the two
LabelMe sets, never fitted on) with its ranking row and its true IoU, fits a ridge regression of
the IoU on the rows using the even-position images of coco128-seg and davis345 only (prompt boxes
grown by a random 0..10 % per side, so that the ranking does not learn one box margin), and
reports top-ranked and best-of-ten IoU on the odd-position images (boxes grown 5 %) and on the
LabelMe folders, with the calibration of the estimate (mean estimate against mean true IoU per
estimate bin). Prints the coefficients to paste into `inference/isnet/ranking.py`. `--cache` keeps
the collected rows so that a re-fit does not run the engines again.
"""

from __future__ import annotations

import argparse
import pickle
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scubasteve.bench.samples import (
    SampleImage,
    load_coco_samples,
    load_labelme_samples,
)
from scubasteve.inference.base import patch_iou
from scubasteve.inference.isnet import ranking


@dataclass
class Group:
    """One object's candidates: rows (n, F), true IoUs (n,), pairwise IoUs (n, n), sources."""

    x: np.ndarray
    iou: np.ndarray
    pair: np.ndarray
    network: np.ndarray  # (n,) bool: the candidate came from the network
    classic_rank: np.ndarray  # (n,) int: rank in the classic engine's own list, -1 for network


@dataclass
class RawObject:
    """What the engines said about one object, kept so that candidates and features can be
    recomputed without running the engines again: the prompt box, the truth, the classic
    engine's proposals and the network's map (as 8-bit probabilities)."""

    box: object
    gt: object
    classic: list  # Proposal
    prob: np.ndarray  # (S, S) uint8
    window: object


class _Replay:
    """A stand-in for the classic engine that returns recorded proposals."""

    name = "classic"

    def __init__(self) -> None:
        self.proposals: list = []

    def set_image(self, image: np.ndarray) -> None:
        pass

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):  # type: ignore[no-untyped-def]
        return list(self.proposals)


def record(
    engine: object, images: Sequence[SampleImage], grow: tuple[float, float], seed: int, label: str
) -> list[tuple[int, RawObject]]:
    """Run both engines on every object and keep their raw answers (see `RawObject`)."""
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic

    assert isinstance(engine, IsnetWithClassic)
    rng = random.Random(seed)
    out: list[tuple[int, RawObject]] = []
    start = time.perf_counter()
    total = sum(len(si.samples) for si in images)
    for index, si in enumerate(images):
        engine.set_image(si.load())
        for s in si.samples:
            box = s.gt.box().grow(rng.uniform(*grow)).clip(si.width, si.height)
            classic = engine.classic.propose(box, 10)
            bm = engine.network.box_map(box)
            prob = np.round(bm.map.prob * 255).astype(np.uint8)
            out.append((index, RawObject(box, s.gt, classic, prob, bm.map.window)))
            if len(out) % 50 == 0:
                rate = (time.perf_counter() - start) / len(out)
                print(f"  {label}: {len(out)}/{total} objects, {rate:.2f} s each", flush=True)
    return out


def replay(
    engine: object, images: Sequence[SampleImage], raw: list[tuple[int, RawObject]]
) -> list[Group]:
    """The ranking rows of recorded objects, computed by the engine's own code."""
    from scubasteve.inference.isnet.crops import ProbMap
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic

    assert isinstance(engine, IsnetWithClassic)
    stand_in = _Replay()
    engine.classic = stand_in  # type: ignore[assignment]
    groups: list[Group] = []
    current = -1
    for index, obj in raw:
        if index != current:
            engine.set_image(images[index].load())
            current = index
        stand_in.proposals = obj.classic
        with engine.network._lock:
            engine.network._maps[obj.window] = ProbMap(
                obj.prob.astype(np.float32) / 255.0, obj.window
            )
        scored = [c for c in engine.scored(obj.box, 10) if c.row.size]
        if not scored:
            continue
        patches = [c.patch for c in scored]
        n = len(scored)
        pair = np.eye(n)
        for i in range(n):
            for j in range(i + 1, n):
                pair[i, j] = pair[j, i] = patch_iou(patches[i], patches[j])
        rank, ranks = 0, []
        for c in scored:
            ranks.append(-1 if c.from_network else rank)
            rank += 0 if c.from_network else 1
        groups.append(
            Group(
                np.stack([c.row for c in scored]),
                np.array([patch_iou(p, obj.gt) for p in patches]),
                pair,
                np.array([c.from_network for c in scored]),
                np.array(ranks),
            )
        )
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


def kept_order(scores: np.ndarray, pair: np.ndarray, k: int = 10, dup: float = 0.9) -> list[int]:
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(pair[i, j] <= dup for j in kept):
            kept.append(int(i))
            if len(kept) >= k:
                break
    return kept


def evaluate(groups: Sequence[Group], coefs: dict[str, float] | None) -> dict[str, float]:
    """Top-1 and best of ten under a ranking (None: the classic engine's own list alone)."""
    top, best, ests, trues, picked_net = [], [], [], [], []
    for g in groups:
        if coefs is None:
            order = [i for i in np.argsort(g.classic_rank) if g.classic_rank[i] >= 0][:10]
        else:
            scores = np.array([ranking.estimate(row, coefs) for row in g.x])
            order = kept_order(scores, g.pair)
            ests.append(scores[order[0]])
            trues.append(g.iou[order[0]])
            picked_net.append(bool(g.network[order[0]]))
        top.append(g.iou[order[0]])
        best.append(g.iou[order].max())
    out = {"n": len(groups), "top1": float(np.mean(top)), "best10": float(np.mean(best))}
    if ests:
        out["top1_from_network"] = float(np.mean(picked_net))
        out["mean_estimate_of_top1"] = float(np.mean(ests))
    return out


def calibration(
    groups: Sequence[Group], coefs: dict[str, float]
) -> list[tuple[str, int, float, float]]:
    """(estimate bin, candidates, mean estimate, mean true IoU) over every candidate."""
    est = np.concatenate([[ranking.estimate(r, coefs) for r in g.x] for g in groups])
    true = np.concatenate([g.iou for g in groups])
    rows = []
    for lo in np.arange(0.0, 1.0, 0.2):
        sel = (est >= lo) & (est < lo + 0.2 if lo < 0.8 else est <= 1.0)
        if sel.any():
            rows.append(
                (
                    f"{lo:.1f}-{lo + 0.2:.1f}",
                    int(sel.sum()),
                    float(est[sel].mean()),
                    float(true[sel].mean()),
                )
            )
    return rows


def _recorded(
    cache: Path | None,
    label: str,
    engine: object,
    images: Sequence[SampleImage],
    grow: tuple[float, float],
    seed: int,
) -> list[tuple[int, RawObject]]:
    path = cache / f"{label}.pkl" if cache is not None else None
    if path is not None and path.is_file():
        with open(path, "rb") as fh:
            return list(pickle.load(fh))
    raw = record(engine, images, grow, seed, label)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(raw, fh)
    return raw


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="IS-Net weights (a model name or a file)")
    ap.add_argument("--data", type=Path, required=True, help="the folder holding the data sets")
    ap.add_argument("--cache", type=Path, default=None, help="keep collected rows here")
    ap.add_argument("--every", type=int, default=1, help="use every n-th image (quick runs)")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    from scubasteve.inference.classic import ClassicProposer
    from scubasteve.inference.isnet import load_proposer
    from scubasteve.inference.isnet.proposer import IsnetOptions
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic

    options = (
        IsnetOptions() if args.input_size is None else IsnetOptions(input_size=args.input_size)
    )
    classic = ClassicProposer()
    engine = IsnetWithClassic(load_proposer(args.weights, args.device, options), classic)
    data = args.data
    coco = load_coco_samples(data / "coco128-seg/instances.json", data / "coco128-seg/images")
    davis = load_coco_samples(data / "davis345/instances.json", data / "davis345/images")
    step = 2 * args.every
    sets = {
        "coco-fit": (coco[0::step], (0.0, 0.10), 0),
        "davis-fit": (davis[0::step], (0.0, 0.10), 1),
        "coco-held": (coco[1::step], (0.05, 0.05), 0),
        "davis-held": (davis[1::step], (0.05, 0.05), 0),
        "tony607": (load_labelme_samples(data / "labelme-tony607"), (0.05, 0.05), 0),
        "labelme-examples": (load_labelme_samples(data / "labelme-examples"), (0.05, 0.05), 0),
    }
    groups = {}
    for label, (images, grow, seed) in sets.items():
        raw = _recorded(args.cache, label, engine, images, grow, seed)
        groups[label] = replay(engine, images, raw)
        engine.classic = classic
    coefs = fit(groups["coco-fit"] + groups["davis-fit"])
    print("COEFFICIENTS: dict[str, float] = {")
    for name, value in coefs.items():
        print(f'    "{name}": {value:.4f},')
    print("}")
    for label, g in groups.items():
        oracle = float(np.mean([x.iou.max() for x in g]))
        classic = evaluate(g, None)
        fitted = evaluate(g, coefs)
        print(
            f"{label}: n={len(g)} oracle(all candidates)={oracle:.3f} "
            f"classic top1/best10={classic['top1']:.3f}/{classic['best10']:.3f} "
            f"combined top1/best10={fitted['top1']:.3f}/{fitted['best10']:.3f} "
            f"(top-1 from the network {fitted['top1_from_network']:.0%})"
        )
    held = groups["coco-held"] + groups["davis-held"]
    print("calibration on the held-out halves (estimate bin, candidates, mean estimate, mean IoU):")
    for row in calibration(held, coefs):
        print("  {}  {:5d}  {:.3f}  {:.3f}".format(*row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
