"""Time per annotation: per-label and overall seconds per object and objects per hour (no Qt)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scubasteve.core.annotation import Annotation


@dataclass(frozen=True)
class LabelTiming:
    label: str
    objects: int
    seconds: float

    @property
    def seconds_per_object(self) -> float:
        return self.seconds / self.objects if self.objects else 0.0

    @property
    def objects_per_hour(self) -> float:
        return 3600.0 / self.seconds_per_object if self.seconds else 0.0


def timings(annotations: Iterable[Annotation]) -> tuple[LabelTiming, list[LabelTiming]]:
    """Overall and per-label (most objects first) timing of the annotations that recorded seconds."""
    per: dict[str, list[float]] = {}
    for ann in annotations:
        if ann.seconds is not None and ann.seconds > 0:
            per.setdefault(ann.label, []).append(float(ann.seconds))
    rows = [LabelTiming(label, len(v), sum(v)) for label, v in per.items()]
    rows.sort(key=lambda r: (-r.objects, r.label))
    total = LabelTiming("all", sum(r.objects for r in rows), sum(r.seconds for r in rows))
    return total, rows
