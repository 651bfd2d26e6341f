"""The original test of value: are masks made with the tool as good as hand-drawn ones as training data?

Fine-tunes IS-Net twice from the same start, with the same options and seed, on the images at even
positions of a COCO file: once on the true masks, once on the masks the tool proposes for each
true box (the default engine's top proposal, accepted unmodified, as the original design's authors
did). Both are then measured on the held-out images at odd positions: mean IoU of the top proposal
from each object's box (IS-Net alone and the default engine), and COCO mask AP / AP50 / AP75 of
those top proposals through `scubasteve eval`'s evaluation. Also reports how many assisted masks
were below IoU 0.9 against the truth.

    python scripts/isnet_value_test.py --coco ../shared/data/coco128-seg/instances.json \\
        --images ../shared/data/coco128-seg/images \\
        --weights ../shared/models/isnet-general-use-fp16.onnx --out out/value-test \\
        [--epochs 6 --input-size 384 --lr 5e-5]

Writes `out/value-test/{true,assisted}/` (run folders), the prediction files and `report.json`.
Resumable: a finished step is not run again (delete its files to redo it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import Annotation, ImageDoc, MaskPatch


def assisted_docs(docs: list[ImageDoc], engine: Any) -> tuple[list[ImageDoc], list[float]]:
    """Each document with every object's mask replaced by the engine's top proposal for its box."""
    from scubasteve.inference.base import patch_iou

    out, ious = [], []
    for doc in docs:
        anns = []
        image = None
        for ann in doc.annotations:
            if ann.extra.get("iscrowd") or not ann.has_area:
                continue
            gt = MaskPatch.from_full(ann.to_mask(doc.height, doc.width))
            if gt.area < 16:
                continue
            if image is None:
                image = doc.pixels()
                engine.set_image(image)
            props = engine.propose(gt.box().grow(0.05).clip(doc.width, doc.height), 10)
            if not props:
                continue
            ious.append(patch_iou(props[0].patch, gt))
            try:
                anns.append(Annotation.from_mask(ann.label, props[0].patch))
            except ValueError:
                continue
        out.append(dataclasses.replace(doc, annotations=anns))
    return out, ious


def predictions(docs: list[ImageDoc], engine: Any) -> list[ImageDoc]:
    """Each held-out document with one predicted mask per true object: the top proposal for its
    box, scored with the engine's quality estimate."""
    out = []
    for doc in docs:
        anns = []
        image = None
        for ann in doc.annotations:
            if ann.extra.get("iscrowd") or not ann.has_area:
                continue
            gt = MaskPatch.from_full(ann.to_mask(doc.height, doc.width))
            if gt.area < 16:
                continue
            if image is None:
                image = doc.pixels()
                engine.set_image(image)
            props = engine.propose(gt.box().grow(0.05).clip(doc.width, doc.height), 10)
            if props:
                score = props[0].quality if props[0].quality is not None else 1.0
                anns.append(Annotation.from_mask(ann.label, props[0].patch, score=float(score)))
        out.append(dataclasses.replace(doc, annotations=anns))
    return out


def coco_ap(gt_docs: list[ImageDoc], pred_docs: list[ImageDoc], where: Path) -> dict[str, float]:
    from scubasteve.evaluation.mask_ap import evaluate_docs

    problems: list[Any] = []
    result = evaluate_docs(gt_docs, pred_docs, "segm", where, where, problems)
    return {"AP": result.ap, "AP50": result.ap50, "AP75": result.ap75}


def _measured(start: dict[str, Any]) -> Any:
    """The start model's held-out measurement, kept in the report as per-object lists."""
    from scubasteve.evaluation.proposal_quality import ProposalQuality
    from scubasteve.training.isnet.run import Measured

    m = start["measured"]
    return Measured(
        ProposalQuality("isnet", m["isnet"]["top1"], m["isnet"]["best"]),
        ProposalQuality("ensemble", m["default"]["top1"], m["default"]["best"]),
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line does
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coco", type=Path, required=True)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--weights", required=True, help="the IS-Net weights both runs start from")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--input-size", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from scubasteve.inference.classic import ClassicProposer
    from scubasteve.inference.isnet import proposer_from_file
    from scubasteve.inference.isnet.with_classic import IsnetWithClassic
    from scubasteve.training.deepmask.run import load_dataset
    from scubasteve.training.isnet.run import fine_tune, measure, split_images
    from scubasteve.training.isnet.trainer import IsnetTrainOptions

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "report.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}

    def save() -> None:
        report_path.write_text(json.dumps(report, indent=2))

    docs = load_dataset(args.coco, args.images).docs
    split = split_images(len(docs), "odd")
    train_docs = [docs[i] for i in split.train]
    held_docs = [docs[i] for i in split.heldout]
    options = IsnetTrainOptions(
        input_size=args.input_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr
    )
    report["options"] = dataclasses.asdict(options)

    if "assisted_ious" not in report:
        t0 = time.perf_counter()
        start = proposer_from_file(args.weights, "cpu")
        engine = IsnetWithClassic(start, ClassicProposer(), concurrent=False)
        _, ious = assisted_docs(train_docs, engine)
        report["assisted_ious"] = ious
        report["assisted_seconds"] = time.perf_counter() - t0
        save()
    ious = np.array(report["assisted_ious"])
    print(
        f"assisted masks: {len(ious)}, mean IoU with the truth {ious.mean():.3f}, "
        f"below 0.9: {np.mean(ious < 0.9):.1%}",
        flush=True,
    )

    if "start" not in report:
        start = proposer_from_file(args.weights, "cpu")
        measured = measure(start, held_docs)
        engine = IsnetWithClassic(start, ClassicProposer(), concurrent=False)
        ap = coco_ap(held_docs, predictions(held_docs, engine), args.coco)
        report["start"] = {
            "heldout": measured.row(),
            "coco": ap,
            "measured": {
                "isnet": {"top1": measured.isnet.top1, "best": measured.isnet.best},
                "default": {"top1": measured.default.top1, "best": measured.default.best},
            },
        }
        save()
    start_measured = _measured(report["start"])

    for variant in ("true", "assisted"):
        if variant in report.get("runs", {}):
            continue
        run_dir = args.out / variant
        if variant == "assisted":
            start = proposer_from_file(args.weights, "cpu")
            engine = IsnetWithClassic(start, ClassicProposer(), concurrent=False)
            training = assisted_docs(train_docs, engine)[0]
        else:
            training = train_docs
        t0 = time.perf_counter()
        result = fine_tune(
            training,
            held_docs,
            base=args.weights,
            run_dir=run_dir,
            options=options,
            split_how=split.how,
            device="cpu",
            resume=True,
            before=start_measured,
        )
        seconds = time.perf_counter() - t0
        if result.weights is None or result.after is None:
            print(f"{variant}: {result.verdict}", file=sys.stderr)
            return 1
        tuned = proposer_from_file(result.weights, "cpu")
        measured = result.after
        engine = IsnetWithClassic(tuned, ClassicProposer(), concurrent=False)
        ap = coco_ap(held_docs, predictions(held_docs, engine), args.coco)
        report.setdefault("runs", {})[variant] = {
            "train_seconds": seconds,
            "epochs": result.record.epochs_done if result.record else 0,
            "heldout": measured.row(),
            "coco": ap,
        }
        save()
        print(variant, report["runs"][variant], flush=True)

    summary = {"start": {k: v for k, v in report["start"].items() if k != "measured"}}
    print(json.dumps(summary | {"runs": report["runs"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
