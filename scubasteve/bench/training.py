"""`scubasteve bench training`: DeepMask training throughput, and quality after training on a split.

1. Throughput: samples per second of training steps (forward, backward, SGD update, sampling
   included) at the configured input size (192 px) and batch size (32), mask and score batches.
2. Quality: the COCO file is split by image into train/validation; DeepMask is trained from random
   weights for `--epochs` epochs; the DeepMask engine (and the classic engine, when available) is
   then run on every validation object's box (grown 5% per side) and scored: mean IoU of the top
   proposal and of the best of ten. Prints Markdown tables and writes `bench.json` in the run folder.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

from scubasteve.evaluation.proposal_quality import ProposalQuality, evaluate_boxes, format_quality
from scubasteve.inference.deepmask.config import DeepMaskConfig
from scubasteve.training.deepmask.data import SampleSource
from scubasteve.training.deepmask.run import (
    default_run_dir,
    load_dataset,
    prepare_run_dir,
    split_dataset,
    train,
)
from scubasteve.training.deepmask.trainer import EpochResult, Trainer, TrainOptions, bf16_choice
from scubasteve.training.progress import ProgressCallback

log = logging.getLogger(__name__)


def measure_throughput(
    net: Any,
    cfg: DeepMaskConfig,
    source: SampleSource,
    device: str,
    batch_size: int,
    steps: int,
    bf16: bool | None = None,
) -> dict[str, float]:
    """Samples per second of mask steps and of score steps (after one warm-up step each)."""
    options = TrainOptions(
        epochs=1, batch_size=batch_size, batches_per_epoch=1, precise_bn=0, bf16=bf16
    )
    trainer = Trainer(copy.deepcopy(net), cfg, source, None, options, Path("."), device)
    trainer.net.train()
    out = {}
    for kind in ("mask", "score"):
        times = []
        for step in range(steps + 1):
            t0 = time.perf_counter()
            if kind == "mask":
                inputs, labels = source.mask_batch(trainer.rng, batch_size)
                loss = trainer._mask_loss(trainer._to_input(inputs), labels)
            else:
                inputs, labels = source.score_batch(trainer.rng, batch_size)
                loss = trainer._score_loss(trainer._to_input(inputs), labels)
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()
            if step:
                times.append(time.perf_counter() - t0)
        out[f"{kind}_samples_per_s"] = (
            batch_size * len(times) / sum(times) if times else float("nan")
        )
    return out


def _classic() -> Any | None:
    try:
        from scubasteve.inference.engines import create_proposer
    except ImportError:
        return None
    try:
        return create_proposer("classic")
    except Exception as exc:
        log.warning("classic engine unavailable: %s", exc)
        return None


def _evaluate_only(args: argparse.Namespace, val_docs: list[Any], device: str) -> int:
    """Score given weights on the validation images (speed and quality), without training."""
    import torch

    from scubasteve.inference.deepmask import load_proposer
    from scubasteve.inference.deepmask.proposer import DeepMaskOptions

    engine = load_proposer(args.evaluate, device, DeepMaskOptions(bf16=bf16_choice(args.bf16)))
    label = f"deepmask {Path(str(args.evaluate)).name} ({torch.get_num_threads()} threads, bf16 {engine.bf16})"
    print(format_quality([(label, evaluate_boxes(engine, val_docs, limit=args.limit))]))
    return 0


def run(args: argparse.Namespace, progress: ProgressCallback | None = None) -> int:
    """The benchmark; `progress`: the trainer's progress callback (the command line's bars)."""
    import torch

    from scubasteve.inference.deepmask import proposer_from_file
    from scubasteve.inference.deepmask.network import build_network
    from scubasteve.inference.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    split = split_dataset(load_dataset(coco=args.coco, images=args.images), args.val_fraction)
    choice = resolve_device(args.device)
    device = choice.device
    run_dir = Path(args.out) if args.out else default_run_dir("bench-training")
    if args.evaluate:
        return _evaluate_only(args, split.val_docs, device)
    if args.epochs > 0:
        prepare_run_dir(run_dir, args.resume)
    print(f"data: {split.describe()}")
    print(
        f"device: {choice.describe()}, torch threads {torch.get_num_threads()}, "
        f"bf16 autocast {args.bf16}"
    )

    cfg = DeepMaskConfig()
    torch.manual_seed(0)
    net = build_network(cfg)
    report: dict[str, Any] = {"device": choice.describe(), "threads": torch.get_num_threads()}
    train_insts = [i for i in split.instances if i.doc in set(split.train_ids)]
    if args.throughput_steps:
        src = SampleSource(split.docs, train_insts, cfg)
        tp = measure_throughput(
            net, cfg, src, device, args.batch_size, args.throughput_steps, bf16_choice(args.bf16)
        )
        report["throughput"] = tp
        print(
            f"throughput at {cfg.input_size} px, batch {args.batch_size}: "
            f"{tp['mask_samples_per_s']:.2f} samples/s (mask batches), "
            f"{tp['score_samples_per_s']:.2f} samples/s (score batches)",
            flush=True,
        )
    if args.epochs == 0:
        return 0

    options = TrainOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        batches_per_epoch=args.batches_per_epoch,
        bf16=bf16_choice(args.bf16),
    )
    t0 = time.perf_counter()

    def on_epoch(r: EpochResult) -> None:
        print(
            f"epoch {r.epoch}: mask loss {r.mask_loss:.4f}, score loss {r.score_loss:.4f}, "
            f"validation mean IoU (centred crops) {r.val_iou:.3f}, {r.samples_per_s:.2f} samples/s",
            flush=True,
        )

    result = train(
        split, net, cfg, options, run_dir, device, resume=args.resume, progress=progress,
        on_epoch=on_epoch, meta={"dataset": split.where, "bench": True},
    )  # fmt: skip
    report["train_minutes_this_session"] = (time.perf_counter() - t0) / 60
    report["train_minutes_total"] = sum(h.seconds for h in result.history) / 60
    report["epochs"] = [vars(h) for h in result.history]
    print(
        f"trained {len(result.history)} epochs in {report['train_minutes_total']:.1f} min of training steps"
    )

    val_docs = split.val_docs
    rows: list[tuple[str, ProposalQuality]] = []
    proposer = proposer_from_file(result.best or result.final, device)  # type: ignore[arg-type]
    rows.append(("deepmask (trained here)", evaluate_boxes(proposer, val_docs, limit=args.limit)))
    classic = _classic()
    if classic is not None:
        rows.append(("classic", evaluate_boxes(classic, val_docs, limit=args.limit)))
    table = format_quality(rows)
    print(table)
    report["quality"] = {name: q.summary() for name, q in rows}
    (run_dir / "bench.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0
