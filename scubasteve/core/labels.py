"""Label lists: the COCO 80 default, labels files, a most-recently-used order, and the one
normalisation every label goes through (`normalise_label`)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from scubasteve.core.errors import InputError
from scubasteve.core.files import read_regular_bytes

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
#: A labels file larger than this is not read (a million labels fit in far less).
MAX_LABELS_FILE_BYTES = 16 << 20

#: Characters that show nothing: zero-width space, soft hyphen, word joiner and invisible
#: operators, byte order mark, and the bidirectional marks, embeddings and isolates.
_INVISIBLE = re.compile(
    "[\u00ad\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
#: Zero-width (non-)joiners that join nothing: at an end or beside a space. Inside a word they
#: matter (Persian and Indic spelling, emoji sequences) and are kept.
_LOOSE_JOINERS = re.compile("(?<!\\S)[\u200c\u200d]+|[\u200c\u200d]+(?!\\S)")


def normalise_label(label: str) -> str:
    """`label` as it is stored and compared: labels that look the same are the same label.

    Unicode NFC (a precomposed and a decomposed "é" are one letter), invisible characters
    removed (`_INVISIBLE`, loose joiners), every run of whitespace (no-break spaces included) one
    space, none at the ends. Case is kept: "Dog" and "dog" look different. Readers report a label
    that this changed; the window's label list and labels files use it too (docs/hostile-inputs.md).
    """
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", label))
    text = _LOOSE_JOINERS.sub("", text)
    text = " ".join(text.split())
    return _LOOSE_JOINERS.sub("", text)


def read_labels_file(path: Path) -> list[str]:
    """Labels from a text file, one per line (labelme's format; blank lines, `#` comments and
    labelme's `__ignore__`/`_background_` entries are skipped; duplicates keep their first place)."""
    raw = read_regular_bytes(path, MAX_LABELS_FILE_BYTES, "labels file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from exc
    return [
        label
        for label in unique(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        if label and label not in _NON_LABELS
    ]


def unique(labels: Iterable[str]) -> list[str]:
    """The labels normalised (`normalise_label`), each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for label in labels:
        seen.setdefault(normalise_label(label), None)
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

    def use(self, label: str) -> str:
        """Put `label` (normalised) first among the recent ones; returns it as normalised."""
        label = normalise_label(label)
        if label not in self._labels:
            self._labels.append(label)
        if label in self._recent:
            self._recent.remove(label)
        self._recent.insert(0, label)
        del self._recent[self._limit :]
        return label

    @property
    def recent(self) -> list[str]:
        return list(self._recent)

    def ordered(self) -> list[str]:
        return self._recent + [label for label in self._labels if label not in self._recent]

    def filter(self, text: str) -> list[str]:
        """Labels containing `text` (case-insensitive): the exact match first, then those starting
        with it, then the rest (typing "ball" must be able to choose "ball" over "ball boy")."""
        needle = normalise_label(text).lower()
        ordered = self.ordered()
        if not needle:
            return ordered
        exact = [lab for lab in ordered if lab.lower() == needle]
        starts = [lab for lab in ordered if lab.lower().startswith(needle) and lab not in exact]
        contains = [lab for lab in ordered if needle in lab.lower() and lab not in exact + starts]
        return exact + starts + contains
