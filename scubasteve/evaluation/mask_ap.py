"""COCO mask AP of predictions, or of assisted annotations, against ground truth.

Both sides are COCO files or LabelMe folders; images are matched by file name. Predictions without a
score (annotations made with assistance, or by hand) count with score 1.0, so scoring an assisted
LabelMe folder against hand annotations of the same images measures label quality directly. Besides
pycocotools' AP, AP50, AP75 and AP at each IoU threshold 0.50..0.95, the mean best mask IoU per
ground-truth object is reported: for label quality it is the easier number to read.
`scubasteve eval` (cli/eval.py) prints these numbers.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.annotation import ImageDoc
from scubasteve.core.errors import InputError, Problem

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@dataclass
class EvalResult:
    """COCO AP numbers (-1 where undefined: no ground truth) and matching statistics."""

    ap: float
    ap50: float
    ap75: float
    ap_per_iou: dict[str, float]  # "0.50" .. "0.95"
    ap_per_class: dict[str, float]
    images: int
    gt_instances: int
    predictions: int
    mean_best_iou: float  # over ground-truth instances; 0 for a missed object
    recall_at_50: float  # fraction of ground-truth instances with a prediction at IoU >= 0.5
    iou_type: str = "segm"
    unmatched_pred_images: list[str] = field(default_factory=list)
    unknown_pred_labels: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"images {self.images}, ground-truth instances {self.gt_instances}, "
            f"predictions {self.predictions} ({self.iou_type})",
            f"AP    {self.ap:.3f}",
            f"AP50  {self.ap50:.3f}",
            f"AP75  {self.ap75:.3f}",
            "AP per IoU threshold: "
            + "  ".join(f"{t}: {v:.3f}" for t, v in self.ap_per_iou.items()),
        ]
        if self.ap_per_class:
            out.append(
                "AP per class: " + ", ".join(f"{k} {v:.3f}" for k, v in self.ap_per_class.items())
            )
        out.append(
            f"mean best IoU per ground-truth instance {self.mean_best_iou:.3f}; "
            f"found at IoU >= 0.5: {self.recall_at_50:.1%}"
        )
        if self.unmatched_pred_images:
            out.append(
                f"{len(self.unmatched_pred_images)} prediction image(s) not in the ground truth "
                f"(ignored): {', '.join(self.unmatched_pred_images[:5])}"
            )
        if self.unknown_pred_labels:
            out.append(
                "prediction labels not in the ground truth (ignored): "
                + ", ".join(f"{k} ({v})" for k, v in self.unknown_pred_labels.items())
            )
        return out


# --- reading either side ------------------------------------------------------------------------


def read_side(
    path: Path, problems: list[Problem] | None = None, gt: Path | None = None
) -> list[ImageDoc]:
    """Documents from a COCO instances JSON, a LabelMe folder, or (for predictions, given the
    ground-truth COCO file `gt`) a COCO results list: detections naming the ground truth's ids."""
    from scubasteve.io.coco import read_coco
    from scubasteve.io.dataset import read_labelme_folder
    from scubasteve.io.json_files import read_json

    problems = problems if problems is not None else []
    if path.is_dir():
        docs, report = read_labelme_folder(path, recursive=True)
        problems.extend(report.problems)
        return docs
    if not path.is_file():
        raise InputError("no such folder or file", path)
    data = read_json(path)
    if isinstance(data, list):
        if gt is None or not gt.is_file():
            raise InputError(
                "a COCO results list names images and categories by id; give the ground truth "
                "as the COCO file those ids come from",
                path,
            )
        return _results_as_docs(data, read_coco(gt, None, []), path, problems)
    return read_coco(path, None, problems).docs


def _results_as_docs(
    results: list[Any], dataset: Any, path: Path, problems: list[Problem] | None = None
) -> list[ImageDoc]:
    """COCO detections (image_id, category_id, segmentation, score) as documents. A detection
    that cannot be used is reported in `problems` (file and index) and the rest go on."""
    import math

    from scubasteve.core.annotation import Annotation, MaskPatch
    from scubasteve.io.coco_checks import segmentation_mask

    problems = problems if problems is not None else []
    names = dataset.category_names
    docs = {
        image_id: ImageDoc(path=doc.path, width=doc.width, height=doc.height)
        for image_id, doc in zip(dataset.image_ids, dataset.docs, strict=True)
    }
    for i, r in enumerate(results):
        where = f"[{i}]"
        try:
            if not isinstance(r, dict):
                raise ValueError("a detection must be an object")
            image_id, category_id = r.get("image_id"), r.get("category_id")
            if not isinstance(image_id, int) or image_id not in docs:
                raise ValueError(f"image_id {image_id!r} is not in the ground truth")
            if not isinstance(category_id, int) or category_id not in names:
                raise ValueError(f"category_id {category_id!r} is not in the ground truth")
            score = r.get("score", 1.0)
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise ValueError(f"'score' must be a number, got {score!r}")
            if not math.isfinite(score):
                raise ValueError(f"'score' must be finite, got {score!r}")
            doc = docs[image_id]
            if "segmentation" not in r:
                raise ValueError("no 'segmentation'")
            full = segmentation_mask(r["segmentation"], doc.height, doc.width)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            problems.append(Problem(f"not a usable COCO detection: {exc}", path, where))
            continue
        patch = MaskPatch.from_full(full)
        if patch.area == 0:
            continue
        label = names[category_id]
        doc.annotations.append(
            Annotation.from_mask(label, patch, score=float(score), keep_mask=True)
        )
    return list(docs.values())


def _by_name(docs: Sequence[ImageDoc], side: str, path: Path) -> dict[str, ImageDoc]:
    found: dict[str, ImageDoc] = {}
    for doc in docs:
        name = doc.path.name
        if name in found:
            raise InputError(
                f"two {side} images are named {name!r}; images are matched by file name", path
            )
        found[name] = doc
    return found


# --- scoring --------------------------------------------------------------------------------------


def _coco_api(data: dict[str, Any]) -> Any:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO()
        api.dataset = data
        api.createIndex()
    return api


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def evaluate_docs(
    gt_docs: Sequence[ImageDoc],
    pred_docs: Sequence[ImageDoc],
    iou_type: str = "segm",
    gt_path: Path = Path("ground truth"),
    pred_path: Path = Path("predictions"),
    problems: list[Problem] | None = None,
) -> EvalResult:
    """Score `pred_docs` against `gt_docs`, images matched by file name (see module docstring).

    Predictions for an image whose size differs from the ground truth's are not scored (their
    coordinates belong to another image); each such image is an error in `problems`.
    """
    problems = problems if problems is not None else []
    from pycocotools import mask as mask_utils
    from pycocotools.cocoeval import COCOeval

    from scubasteve.io.coco import coco_dict, results_from_docs

    if iou_type not in ("segm", "bbox"):
        raise InputError(f"iou type must be segm or bbox, got {iou_type!r}")
    gt = _by_name(gt_docs, "ground-truth", gt_path)
    pred = _by_name(pred_docs, "prediction", pred_path)
    names = list(gt)
    if not names:
        raise InputError("the ground truth has no images", gt_path)
    gt_list = [gt[n] for n in names]
    gt_data = coco_dict(gt_list)
    category_ids = {c["name"]: c["id"] for c in gt_data["categories"]}
    image_ids = [img["id"] for img in gt_data["images"]]
    # Predictions are drawn on the ground truth's image (same size): an empty doc where none exists.
    for n in names:
        if n in pred and (pred[n].width, pred[n].height) != (gt[n].width, gt[n].height):
            problems.append(
                Problem(
                    f"the prediction's image is {pred[n].width}x{pred[n].height} but the ground "
                    f"truth's is {gt[n].width}x{gt[n].height}; its predictions are not scored",
                    pred[n].path,
                )
            )
            del pred[n]
    aligned = [
        ImageDoc(path=gt[n].path, width=gt[n].width, height=gt[n].height,
                 annotations=list(pred[n].annotations) if n in pred else [])
        for n in names
    ]  # fmt: skip
    results = results_from_docs(aligned, image_ids, category_ids)
    unknown: dict[str, int] = {}
    for doc in aligned:
        for ann in doc.annotations:
            if ann.has_area and ann.label not in category_ids:
                unknown[ann.label] = unknown.get(ann.label, 0) + 1
    gt_api = _coco_api(gt_data)
    gt_count = len(gt_data["annotations"])
    per_iou = {f"{t:.2f}": -1.0 for t in IOU_THRESHOLDS}
    per_class: dict[str, float] = {}
    ap = ap50 = ap75 = -1.0 if gt_count == 0 else 0.0
    if results and gt_count:
        if iou_type == "bbox":
            for r in results:
                r["bbox"] = [float(v) for v in mask_utils.toBbox(r["segmentation"])]
        with contextlib.redirect_stdout(io.StringIO()):
            dt_api = gt_api.loadRes(results)
            ev = COCOeval(gt_api, dt_api, iou_type)
            ev.params.imgIds = image_ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        ap, ap50, ap75 = (float(v) for v in ev.stats[:3])
        precision = ev.eval["precision"]  # [T, R, K, A, M]: all areas (A=0), 100 detections (M=-1)
        per_iou = {
            f"{t:.2f}": _mean_valid(precision[i, :, :, 0, -1]) for i, t in enumerate(IOU_THRESHOLDS)
        }
        for k, cat_id in enumerate(ev.params.catIds):
            per_class[gt_api.cats[cat_id]["name"]] = _mean_valid(precision[:, :, k, 0, -1])
    elif gt_count:
        per_iou = {f"{t:.2f}": 0.0 for t in IOU_THRESHOLDS}
        per_class = {c["name"]: 0.0 for c in gt_data["categories"]}
    best = _best_ious(gt_data, results)
    return EvalResult(
        ap=ap,
        ap50=ap50,
        ap75=ap75,
        ap_per_iou=per_iou,
        ap_per_class=per_class,
        images=len(names),
        gt_instances=gt_count,
        predictions=len(results),
        mean_best_iou=float(np.mean(best)) if best.size else -1.0,
        recall_at_50=float(np.mean(best >= 0.5)) if best.size else -1.0,
        iou_type=iou_type,
        unmatched_pred_images=sorted(set(pred) - set(gt)),
        unknown_pred_labels=unknown,
    )


def _rle(rle: dict[str, Any]) -> dict[str, Any]:
    """Compressed RLE with bytes counts, as pycocotools' C functions want it."""
    counts = rle["counts"]
    return {
        "size": rle["size"],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def _best_ious(gt_data: dict[str, Any], results: list[dict[str, Any]]) -> np.ndarray:
    """For each ground-truth instance, its best mask IoU with a same-class prediction (0 if none)."""
    from pycocotools import mask as mask_utils

    sizes = {img["id"]: (img["height"], img["width"]) for img in gt_data["images"]}
    preds: dict[tuple[int, int], list[Any]] = {}
    for r in results:
        preds.setdefault((r["image_id"], r["category_id"]), []).append(r["segmentation"])
    best = []
    for ann in gt_data["annotations"]:
        h, w = sizes[ann["image_id"]]
        seg = ann["segmentation"]
        gt_rle = (
            mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            if isinstance(seg, list)
            else _rle(seg)
        )
        candidates = preds.get((ann["image_id"], ann["category_id"]), [])
        if not candidates:
            best.append(0.0)
            continue
        dts = [_rle(c) for c in candidates]
        ious = mask_utils.iou(dts, [gt_rle], [0])
        best.append(float(np.max(ious)))
    return np.asarray(best, dtype=np.float64)


# --- plotting ----------------------------------------------------------------------------------


def plot_ap_curve(results: dict[str, EvalResult], path: Path) -> None:
    """Save AP against the IoU threshold (one line per result) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from scubasteve.core.atomic import atomic_write_bytes

    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    for label, result in results.items():
        xs = [float(t) for t in result.ap_per_iou]
        ys = [max(v, 0.0) for v in result.ap_per_iou.values()]
        ax.plot(xs, ys, marker="o", label=f"{label} (AP {max(result.ap, 0):.3f})")
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("AP")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0.48, 0.97)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    ax.set_title("COCO mask AP against IoU threshold")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
