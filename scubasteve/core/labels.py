"""Label lists: the COCO 80 default, labels files, and a most-recently-used order."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from scubasteve.core.errors import InputError

COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

#: Lines of a labelme labels file that are not object classes.
_NON_LABELS = {"__ignore__", "_background_"}

LABELS_FILENAMES = ("labels.txt", "classes.txt")


def read_labels_file(path: Path) -> list[str]:
    """Labels from a text file, one per line (labelme's format; blank lines, `#` comments and
    labelme's `__ignore__`/`_background_` entries are skipped; duplicates keep their first place)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from exc
    except OSError as exc:
        raise InputError(f"cannot read labels file: {exc.strerror}", path) from exc
    return unique(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line.strip() not in _NON_LABELS
    )


def unique(labels: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for label in labels:
        seen.setdefault(label, None)
    return list(seen)


def find_labels_file(folder: Path) -> Path | None:
    for name in LABELS_FILENAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


class RecentLabels:
    """Labels ordered most recently used first, then the project's own order."""

    def __init__(self, labels: Iterable[str], recent: Iterable[str] = (), limit: int = 10):
        self._labels = unique(labels)
        self._recent = [r for r in unique(recent) if r in self._labels][:limit]
        self._limit = limit

    def use(self, label: str) -> None:
        if label not in self._labels:
            self._labels.append(label)
        if label in self._recent:
            self._recent.remove(label)
        self._recent.insert(0, label)
        del self._recent[self._limit :]

    @property
    def recent(self) -> list[str]:
        return list(self._recent)

    def ordered(self) -> list[str]:
        return self._recent + [label for label in self._labels if label not in self._recent]

    def filter(self, text: str) -> list[str]:
        """Labels containing `text` (case-insensitive): the exact match first, then those starting
        with it, then the rest (typing "ball" must be able to choose "ball" over "ball boy")."""
        needle = text.strip().lower()
        ordered = self.ordered()
        if not needle:
            return ordered
        exact = [lab for lab in ordered if lab.lower() == needle]
        starts = [lab for lab in ordered if lab.lower().startswith(needle) and lab not in exact]
        contains = [lab for lab in ordered if needle in lab.lower() and lab not in exact + starts]
        return exact + starts + contains
