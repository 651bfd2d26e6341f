"""Loading images (pixels, pyramid, annotation file) on a worker, with a small cache and preloading.

`load_entry` runs on a worker and returns everything the window needs for one image; nothing is
decoded on the GUI thread. The next image is preloaded after each switch so that switching is instant.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from scubasteve.core.annotation import ImageDoc, ImageState, doc_state
from scubasteve.core.errors import InputError, Problem
from scubasteve.gui.canvas.pyramid import build_pyramid
from scubasteve.gui.workers import submit

log = logging.getLogger(__name__)

#: Decoded images kept in memory (bytes); the current and the preloaded next one always fit.
CACHE_BYTES = 1_500_000_000


@dataclass(eq=False)
class LoadedImage:
    """One image ready to show. `levels[0]` is the (H, W, 3) uint8 RGB image, then halvings."""

    path: Path
    levels: list[np.ndarray]
    doc: ImageDoc
    json_path: Path
    problem: str | None = None  # the annotation file exists but cannot be read
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def rgb(self) -> np.ndarray:
        return self.levels[0]

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.levels)


def describe_read_error(json_path: Path, exc: Exception) -> str:
    """Why an annotation file cannot be read, as the banner, the list and the export say it."""
    if isinstance(exc, InputError):
        return str(exc)
    return f"{json_path}: cannot be read ({type(exc).__name__}: {exc})"


def file_states(files: list[tuple[int, Path]]) -> list[tuple[int, ImageState | None, str]]:
    """For each (row, annotation file): (row, its image's state, "") from the file's shapes, or
    (row, None, why) when it cannot be read. Runs on a worker."""
    from scubasteve.io.labelme import read_labelme

    found: list[tuple[int, ImageState | None, str]] = []
    for row, json_path in files:
        try:
            doc = read_labelme(json_path, [])
        except Exception as exc:
            found.append((row, None, describe_read_error(json_path, exc)))
        else:
            found.append((row, doc_state(doc), ""))
    return found


def load_entry(path: Path, json_path: Path) -> LoadedImage:
    """Decode `path` and read its LabelMe file (if any). Raises InputError for a bad image."""
    from scubasteve.io.images import load_image

    rgb = load_image(path)
    h, w = rgb.shape[:2]
    levels = build_pyramid(rgb)
    problem = None
    warnings: list[str] = []
    doc = ImageDoc(path=path, width=w, height=h)
    if json_path.is_file():
        from scubasteve.io.labelme import read_labelme

        problems: list[Problem] = []
        try:
            read = read_labelme(json_path, problems)
        except Exception as exc:  # a file that trips the reader must never be overwritten either
            problem = describe_read_error(json_path, exc)
        else:
            if (read.width, read.height) != (w, h):
                warnings.append(
                    f"{json_path.name} is for a {read.width}x{read.height} image, but the image is "
                    f"{w}x{h}; shapes may be misplaced"
                )
            read.path, read.width, read.height = path, w, h
            doc = read
            warnings.extend(str(p) for p in problems)
    # Documents stay open for the session; they must not keep the pixels alive, so they reload.
    doc.loader = functools.partial(load_image, path)
    return LoadedImage(path, levels, doc, json_path, problem, warnings)


class ImageLoader(QObject):
    """Loads images on `pool`, caches a few, and merges duplicate requests for the same path."""

    loaded = Signal(object)  # LoadedImage
    preloaded = Signal(object)  # LoadedImage decoded ahead (the next image): engines may prepare it
    failed = Signal(object, str)  # Path, message

    def __init__(
        self,
        pool: QThreadPool,
        json_path_for: Callable[[Path], Path],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._json_path_for = json_path_for
        self._cache: OrderedDict[str, LoadedImage] = OrderedDict()
        self._in_flight: dict[str, bool] = {}  # key -> whether someone wants it shown

    def clear(self) -> None:
        self._cache.clear()

    def drop(self, path: Path) -> None:
        self._cache.pop(str(path), None)

    def cached(self, path: Path) -> LoadedImage | None:
        return self._cache.get(str(path))

    def request(self, path: Path, show: bool = True) -> None:
        """Load `path`; when `show`, emit `loaded`/`failed` for it. Preloads pass show=False."""
        key = str(path)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            if show:
                self.loaded.emit(hit)
            return
        if key in self._in_flight:
            self._in_flight[key] = self._in_flight[key] or show
            return
        self._in_flight[key] = show
        submit(
            self._pool,
            load_entry,
            path,
            self._json_path_for(path),
            on_done=self._done,
            on_error=lambda exc: self._failed(path, exc),
            priority=1 if show else 0,
        )

    def _done(self, entry: LoadedImage) -> None:
        show = self._in_flight.pop(entry.key, False)
        self._cache[entry.key] = entry
        self._cache.move_to_end(entry.key)
        while len(self._cache) > 2 and sum(e.nbytes for e in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)
        if show:
            self.loaded.emit(entry)
        else:
            self.preloaded.emit(entry)

    def _failed(self, path: Path, exc: BaseException) -> None:
        show = self._in_flight.pop(str(path), False)
        message = (
            str(exc) if isinstance(exc, InputError) else f"{path}: {type(exc).__name__}: {exc}"
        )
        if show:
            self.failed.emit(path, message)
        else:
            log.info("preload failed: %s", message)
