"""Time per annotation: per-label and overall seconds per object and objects per hour (no Qt)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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
    return timings_of(
        (a.label, float(a.seconds)) for a in annotations if a.seconds is not None and a.seconds > 0
    )


def recorded_times(json_paths: Iterable[Path]) -> list[tuple[str, float]]:
    """(label, seconds) of every timed annotation in these LabelMe files (a worker reads them).

    Only our own metadata key is looked at; a shape group (an object with holes) counts once.
    Files that cannot be read are skipped: this is a statistic, not a validation.
    """
    from scubasteve.io.json_files import read_json
    from scubasteve.io.labelme_shapes import META_KEY

    found: dict[str, tuple[str, float]] = {}
    for path in json_paths:
        try:
            data = read_json(path)
        except Exception:
            continue
        shapes = data.get("shapes") if isinstance(data, dict) else None
        for i, shape in enumerate(shapes if isinstance(shapes, list) else []):
            meta = shape.get(META_KEY) if isinstance(shape, dict) else None
            seconds = meta.get("seconds") if isinstance(meta, dict) else None
            label = shape.get("label")
            if isinstance(seconds, (int, float)) and seconds > 0 and isinstance(label, str):
                key = str(meta.get("id") or f"{path}:{i}")
                found[key] = (label, float(seconds))
    return list(found.values())


def timings_of(records: Iterable[tuple[str, float]]) -> tuple[LabelTiming, list[LabelTiming]]:
    """Like `timings`, from (label, seconds) pairs."""
    per: dict[str, list[float]] = {}
    for label, seconds in records:
        per.setdefault(label, []).append(seconds)
    rows = [LabelTiming(label, len(v), sum(v)) for label, v in per.items()]
    rows.sort(key=lambda r: (-r.objects, r.label))
    total = LabelTiming("all", sum(r.objects for r in rows), sum(r.seconds for r in rows))
    return total, rows
