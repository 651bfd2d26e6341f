"""Image folders behind a URI (`s3://`, `gs://`, `abfs://`, `hdfs://`, ...) for `annotate --ray`.

Listed and read through pyarrow's file systems, the ones Ray Data uses (credentials and endpoints
come from the usual places: `AWS_*` variables, `~/.aws`, instance roles; `AWS_ENDPOINT_URL` or an
`?endpoint_override=` in the URI for S3-compatible servers).

Where the files go: object stores have no atomic rename and no cheap "does a file exist" check,
so the LabelMe files are written to a local (or shared, mounted) folder, `--out`, which is
required. Each image `URI/name.jpg` gets `OUT/name.json` whose imagePath is `name.jpg`: the file
the local command would write beside a copy of the image. After `aws s3 sync URI OUT` (or any
copy of the images into OUT) the folder is an ordinary LabelMe folder that the window opens. All
the local command's rules hold, because they are about the JSON files: atomic writes, a rerun
skips finished images, files without our record are never touched (unless `--overwrite`).
Like the local command, only the folder's own images are listed, not its subfolders.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError
from scubasteve.core.project import is_image_file, natural_key

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(text: str | Path) -> bool:
    """True for `scheme://...` (a Path never is: it folds the double slash)."""
    return isinstance(text, str) and bool(_SCHEME.match(text))


def join(folder_uri: str, name: str) -> str:
    """`folder_uri/name`, keeping a query string (`?endpoint_override=...`) at the end."""
    base, mark, query = folder_uri.partition("?")
    return f"{base.rstrip('/')}/{name}{mark}{query}"


@functools.cache
def _filesystem(folder_uri: str) -> tuple[Any, str]:
    """(pyarrow file system, path inside it) of a folder URI; cached per process (one client)."""
    try:
        from pyarrow import fs
    except ImportError as exc:
        raise InputError('reading a URI needs pyarrow: pip install "scubasteve[scale]"') from exc
    try:
        filesystem, path = fs.FileSystem.from_uri(folder_uri)
    except (ValueError, OSError) as exc:  # pyarrow: unknown scheme, bad URI, no such bucket
        raise InputError(f"cannot open {folder_uri}: {exc}") from exc
    return filesystem, path.rstrip("/")


@dataclass
class RemoteFolder:
    """A folder of images behind a URI, annotated into the local folder `out` (module docstring).

    It offers what the planning and writing code use of a `Project`: `images` (where each image
    would lie in `out`) and `annotation_path`; `source` gives the URI to read an image from."""

    uri: str
    out: Path
    names: list[str]

    @classmethod
    def open(cls, uri: str, out: Path | None, on_ray: bool = True) -> RemoteFolder:
        if not on_ray:
            raise InputError(
                f"images at a URI ({uri}) are read by Ray Data: add --ray, or copy them into a "
                "folder"
            )
        if out is None:
            raise InputError(
                f"images at a URI ({uri}) need --out DIR: a local or mounted folder for the "
                "LabelMe files (object stores cannot be written atomically; see docs/scale.md)"
            )
        from pyarrow import fs

        filesystem, root = _filesystem(uri)

        try:
            infos = filesystem.get_file_info(fs.FileSelector(root, recursive=False))
        except OSError as exc:
            raise InputError(f"cannot list {uri}: {exc}") from exc
        names = [i.base_name for i in infos if i.type == fs.FileType.File]
        names = sorted((n for n in names if is_image_file(Path(n))), key=natural_key)
        return cls(uri, Path(out).expanduser().resolve(), names)

    @property
    def images(self) -> list[Path]:
        return [self.out / name for name in self.names]

    def annotation_path(self, image: Path) -> Path:
        return image.with_suffix(".json")

    def source(self, image: Path) -> str:
        return join(self.uri, image.name)


def read_uri(uri: str) -> bytes:
    """The bytes of the file at `uri` (OSError when it cannot be read). The file system is made
    once per folder and process, so a Ray task reading many images opens one client."""
    base, mark, query = uri.partition("?")
    folder, _, name = base.rpartition("/")
    filesystem, root = _filesystem(folder + mark + query)
    with filesystem.open_input_stream(f"{root}/{name}") as stream:
        return bytes(stream.read())
