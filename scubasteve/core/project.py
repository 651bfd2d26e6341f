"""A project: a folder of images, its label list, and where its annotation files live."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scubasteve.core.errors import InputError
from scubasteve.core.labels import COCO80, find_labels_file, read_labels_file

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def natural_key(name: str) -> list[object]:
    """Sort key that orders img2 before img10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def scan_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` in natural order. Uses os.scandir so that 20,000 files list quickly."""
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    found: list[Path] = []

    def walk(directory: Path) -> Iterator[Path]:
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_file() and is_image_file(Path(entry.name)):
                        yield Path(entry.path)
                    elif recursive and entry.is_dir() and not entry.name.startswith("."):
                        yield from walk(Path(entry.path))
        except PermissionError as exc:
            raise InputError("cannot list the folder: permission denied", directory) from exc

    found.extend(walk(folder))
    found.sort(key=lambda p: natural_key(str(p.relative_to(folder))))
    return found


@dataclass
class Project:
    """A folder of images and the LabelMe files that annotate them.

    Annotation files sit beside their images (labelme's own layout) unless `annotation_dir` is set,
    in which case `annotation_dir/<relative image path>.json` is used.
    """

    root: Path
    labels: list[str] = field(default_factory=lambda: list(COCO80))
    annotation_dir: Path | None = None
    images: list[Path] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        root: Path | str,
        annotation_dir: Path | str | None = None,
        labels_file: Path | str | None = None,
        recursive: bool = False,
    ) -> Project:
        root = Path(root).expanduser().resolve()
        images = scan_images(root, recursive=recursive)
        labels_path = Path(labels_file) if labels_file else find_labels_file(root)
        labels = read_labels_file(labels_path) if labels_path else list(COCO80)
        return cls(
            root=root,
            labels=labels or list(COCO80),
            annotation_dir=Path(annotation_dir).expanduser().resolve() if annotation_dir else None,
            images=images,
        )

    def annotation_path(self, image: Path) -> Path:
        """Where the LabelMe JSON for `image` lives (whether or not it exists yet)."""
        if self.annotation_dir is None:
            return image.with_suffix(".json")
        try:
            relative = image.resolve().relative_to(self.root)
        except ValueError:
            relative = Path(image.name)
        return (self.annotation_dir / relative).with_suffix(".json")
