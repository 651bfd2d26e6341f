"""`scubasteve segment`: the boxes users already have become masks, for review (ADR 0408).

The workflow (what is replaced, skipped, redone and kept) lives in `inference/segment.py` and
`inference/segment_coco.py`; this module turns the options into a run, shows a progress bar, makes
Ctrl+C stop after the current box (what is done is written; a second Ctrl+C stops at once) and
prints the summary. The engines load inside the handler, when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scubasteve.core.cancel import CancelToken
    from scubasteve.inference.base import MaskProposer
    from scubasteve.inference.segment import SegmentSummary

DESCRIPTION = """\
Turns boxes into masks with a mask-proposal engine: each box becomes the engine's top proposal,
outlined as a polygon with the box's label and flagged for review, as the window's
pre-annotations are (open the folder in Scuba Steve: Y keeps a mask, N gives the box back).

SOURCE is a folder of LabelMe files (their rectangle shapes are the boxes; the files are changed
in place, or written to --out FOLDER) or a COCO instances file (its annotations with a bbox and no
segmentation are the boxes; --out is required: a FOLDER gets one LabelMe file per image, to review
in the window and then `scubasteve convert` back to COCO; a FILE.json gets a copy of the COCO file
with a segmentation for each box and everything else unchanged).

No box is ever lost: a LabelMe mask keeps its rectangle in the shape (key "scubasteve_replaces")
until someone accepts the mask, and a COCO annotation keeps its bbox. A second run skips the boxes
already done (--overwrite redoes the masks nobody has reviewed yet, never accepted ones); Ctrl+C
stops after the current box and keeps what is done. A bad file, image or box is named at the end
and the rest is done."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment",
        help="turn LabelMe rectangles or COCO boxes into masks for review",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", type=Path, help="a folder of LabelMe files, or a COCO .json file")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write: a folder (LabelMe files) or, for a COCO source, a .json file",
    )
    p.add_argument("--images", type=Path, default=None, help="image folder of a COCO source")
    p.add_argument(
        "--engine",
        default="ensemble",
        help="mask-proposal engine: ensemble (default: the best installed), classic, isnet, "
        "deepmask, sam2",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (learned engines)")
    p.add_argument(
        "--weights", default=None, help="the learned engine's model: a name or a weights file"
    )
    p.add_argument("--overwrite", action="store_true", help="redo masks that await review")
    p.add_argument("--recursive", action="store_true", help="LabelMe files in subfolders too")
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="outline simplification in pixels (default: the window's, 1)",
    )
    p.set_defaults(handler=cmd_segment)


def cmd_segment(args: argparse.Namespace) -> int:
    from scubasteve.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED
    from scubasteve.core.cancel import CancelToken
    from scubasteve.core.errors import InputError
    from scubasteve.inference.engines import create_proposer
    from scubasteve.inference.segment import SegmentOptions

    source: Path = args.source
    is_coco = source.is_file()
    if not is_coco and not source.is_dir():
        raise InputError("no such folder or file", source)
    if is_coco and args.out is None:
        raise InputError(
            "a COCO source needs --out: a folder for LabelMe files to review, or a .json file",
            source,
        )
    if not is_coco and args.images is not None:
        raise InputError("--images is for a COCO source; LabelMe files name their images")
    if not is_coco and args.out is not None and args.out.suffix.lower() == ".json":
        raise InputError("--out for a LabelMe folder is a folder, not a .json file", args.out)
    if args.tolerance is not None and not 0.0 <= args.tolerance <= 20.0:
        raise InputError(f"--tolerance must be between 0 and 20 pixels, got {args.tolerance}")
    engine = create_proposer(args.engine, device=args.device, weights=args.weights)
    print(f"engine: {_engine_text(engine)}", file=sys.stderr)
    options = SegmentOptions(
        overwrite=args.overwrite,
        **({"tolerance": args.tolerance} if args.tolerance is not None else {}),
        run_info={"engine": args.engine, "serving": _serving(engine), "device": engine.device},
    )
    cancel = CancelToken()
    with _stop_on_ctrl_c(cancel), _Bar() as bar:
        if is_coco:
            from scubasteve.inference.segment_coco import segment_coco

            summary = segment_coco(
                source, engine, args.out, images=args.images, options=options, cancel=cancel,
                progress=bar.update,
            )  # fmt: skip
        else:
            from scubasteve.inference.segment import segment_labelme

            summary = segment_labelme(
                source, engine, out=args.out, recursive=args.recursive, options=options,
                cancel=cancel, progress=bar.update,
            )  # fmt: skip
    for problem in summary.problems:
        print(problem, file=sys.stderr)
    for line in summary_lines(summary, _engine_text(engine)):
        print(line)
    if summary.stopped:
        return EXIT_INTERRUPTED
    bad_input = any(p.severity == "error" for p in summary.problems)
    return EXIT_SOME_FAILED if summary.failed or bad_input else EXIT_OK


def _serving(engine: MaskProposer) -> str:
    return " + ".join(e.name for e in engine.engines)


def _engine_text(engine: MaskProposer) -> str:
    serving = _serving(engine)
    name = engine.name if serving == engine.name else f"{engine.name} ({serving})"
    return f"{name} on {engine.device}" + (f"; {engine.note}" if engine.note else "")


def summary_lines(summary: SegmentSummary, engine: str) -> list[str]:
    """What a run did, for people: counts first, then every failure with its reason."""
    n = summary.segmented
    per_box = f" ({summary.seconds / n:.2f} s/box)" if n else ""
    counts = ", ".join(f"{label} {count}" for label, count in summary.labels.most_common())
    out = [
        f"segmented {n} box(es) in {len(summary.written)} file(s) in {summary.seconds:.1f} s"
        f"{per_box}{': ' + counts if counts else ''}; engine {engine}"
    ]
    if n:
        out.append(
            "each mask awaits review and keeps its box: open the folder in Scuba Steve, "
            "Y keeps a mask, N gives the box back"
        )
    skipped = []
    if summary.done_before:
        skipped.append(f"{summary.done_before} box(es) segmented before (--overwrite redoes them)")
    if summary.locked:
        skipped.append(f"{summary.locked} locked rectangle(s)")
    if skipped:
        out.append("skipped " + " and ".join(skipped))
    if summary.without_boxes:
        out.append(f"{summary.without_boxes} file(s) or image(s) had no boxes to segment")
    errors = sum(p.severity == "error" for p in summary.problems)
    if errors:
        out.append(
            f"{errors} shape(s) or entries could not be read (named above) and were left as they are"
        )
    if summary.failed:
        out.append(f"failed {len(summary.failed)}:")
        out.extend(f"  {where}: {why}" for where, why in summary.failed)
    if summary.stopped:
        out.append("interrupted: what was done is written; run the same command to continue")
    return out


class _Bar:
    """A tqdm bar in boxes on stderr, made at the first progress call (when the total is known);
    silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="segmenting", unit="box", disable=None, leave=False)
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def _stop_on_ctrl_c(cancel: CancelToken) -> Iterator[None]:
    """The first Ctrl+C asks the run to stop after the current box; a second one stops at once."""
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread: leave Ctrl+C alone
        yield
        return

    def stop(signum: int, frame: object) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        print("\nstopping after the current box (Ctrl+C again stops at once)", file=sys.stderr)

    try:
        signal.signal(signal.SIGINT, stop)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
