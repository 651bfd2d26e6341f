"""Fetch one URL into a `.part` file with resume (HTTP Range), progress, cancellation, clear errors.

`requests` does the HTTP; this module adds what pooch's downloader lacks (see
docs/adr/0300-weights-download-with-resume.md): continuing a partial file with a Range request,
keeping the partial file when the connection breaks, and messages that say what went wrong.
Verification and the final rename are the caller's job (`scubasteve.weights`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.errors import ScubaSteveError, is_disk_full
from scubasteve.core.progress import Progress

CHUNK_SIZE = 1 << 16
CONNECT_TIMEOUT_S = 15.0
#: Progress callbacks are rate-limited so that a GUI is not flooded (the last one always comes).
PROGRESS_INTERVAL_S = 0.1
_SPACE_MARGIN = 16 * 1024 * 1024


class DownloadError(ScubaSteveError):
    """A download failed: network, server, disk or verification. The message says which."""


class UnreachableError(DownloadError):
    """Nothing was received: no connection, or the server answered with an HTTP error."""


class ChecksumMismatch(DownloadError):
    """The downloaded or imported file is not the expected one (size or SHA-256 differs)."""


def file_sha256(path: Path, cancel: CancelToken | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            raise_if_cancelled(cancel)
            digest.update(block)
    return digest.hexdigest()


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown size"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"  # pragma: no cover


def part_meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def discard_partial(part: Path) -> None:
    for p in (part, part_meta_path(part)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _open_part(path: Path, mode: str) -> IO[bytes]:
    # One place where the partial file is opened, so tests can simulate a full disk.
    return open(path, mode)


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def read_part_meta(part: Path) -> dict[str, Any]:
    try:
        data = json.loads(part_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_part_meta(part: Path, meta: dict[str, Any]) -> None:
    # Best effort: without it a resume simply goes without If-Range.
    with contextlib.suppress(OSError):
        part_meta_path(part).write_text(json.dumps(meta), encoding="utf-8")


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: its cause, and the exceptions requests and urllib3 keep as their
    first argument or `reason` (ConnectionError(MaxRetryError(reason=NameResolutionError(...))))."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, getattr(current, "reason", None), *current.args[:1]]
        todo.extend(e for e in inner if isinstance(e, BaseException))


def _connect_problem(url: str, exc: Exception) -> str:
    import requests

    text = str(exc)
    host = _host(url)
    if isinstance(exc, requests.exceptions.Timeout):
        return (
            f"no answer from {host} within {CONNECT_TIMEOUT_S:.0f} s (no network, or a firewall?)"
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the secure connection to {host} failed (certificate problem or a proxy): {text}"
    causes = list(_causes(exc))
    if any(isinstance(e, socket.gaierror) for e in causes):
        return f"cannot find the server {host} (no network or no DNS?)"
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return f"the connection to {host} was refused (no network, a proxy, or the server is down)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot connect to {host} (no network?): {text}"
    return f"the request to {url} failed: {text}"


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from a Content-Range header such as ``bytes 100-199/200``."""
    match = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def fetch(
    url: str,
    part: Path,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 60.0,
    user_agent: str = "scubasteve",
) -> int:
    """Download `url` into `part`, continuing from the bytes `part` already holds.

    Returns the final size of `part`. On a broken connection, a read timeout or cancellation the
    `.part` file stays for the next call; on a full disk it is deleted (to give the space back);
    on a server error it is left untouched. Raises `DownloadError` with a message for the user,
    or `Cancelled`.
    """
    import requests

    part.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    meta = read_part_meta(part)
    if start and meta.get("url") not in (None, url):
        discard_partial(part)  # a partial file of another address cannot be continued
        start, meta = 0, {}
    # identity: compressed transfer would make byte offsets differ from the file's.
    headers = {"Accept-Encoding": "identity", "User-Agent": user_agent}
    if start:
        headers["Range"] = f"bytes={start}-"
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    try:
        response = requests.get(
            url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_S, timeout)
        )
    except requests.exceptions.RequestException as exc:
        raise UnreachableError(_connect_problem(url, exc)) from exc
    with response:
        if response.status_code == 416 and start:
            _, whole = _content_range(response.headers.get("Content-Range"))
            if whole == start:
                return start  # the previous run had already received everything
            discard_partial(part)
            raise DownloadError(
                f"{url}: the server refused to continue the partial download; it was deleted, "
                "run the download again to start over"
            )
        if response.status_code >= 400:
            reason = response.reason or ""
            raise UnreachableError(
                f"{url}: the server answered HTTP {response.status_code} {reason}".rstrip()
            )
        total: int | None
        if response.status_code == 206 and start:
            first, total = _content_range(response.headers.get("Content-Range"))
            if first != start:
                raise DownloadError(f"{url}: the server sent the wrong part of the file")
            mode = "ab"
        else:
            # 200: a full body (the server ignored Range, or the file changed since): start over.
            start, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        _write_part_meta(
            part,
            {
                "url": url,
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
                "total": total,
            },
        )
        if total is not None and _free_bytes(part.parent) < total - start + _SPACE_MARGIN:
            raise DownloadError(
                f"not enough free disk space in {part.parent}: the download needs "
                f"{human_size(total - start)} more; free some space and run it again"
            )
        return _stream(response, part, mode, start, total, url, progress, cancel)


def _stream(
    response: Any,
    part: Path,
    mode: str,
    start: int,
    total: int | None,
    url: str,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> int:
    import requests

    done = start
    last_report = 0.0
    if progress is not None:
        progress(done, total or 0)
    try:
        with _open_part(part, mode) as fh:
            try:
                for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
                    raise_if_cancelled(cancel)
                    if not chunk:
                        continue
                    fh.write(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if progress is not None and now - last_report >= PROGRESS_INTERVAL_S:
                        last_report = now
                        progress(done, total or 0)
            except requests.exceptions.RequestException as exc:
                fh.flush()
                raise DownloadError(
                    f"the connection to {_host(url)} broke after {human_size(done)} of "
                    f"{human_size(total)}; the partial file was kept, run the download again "
                    "to continue where it stopped"
                ) from exc
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if is_disk_full(exc):
            discard_partial(part)
            raise DownloadError(
                f"the disk is full (writing {part.parent}); the partial download was deleted. "
                f"Free at least {human_size(total)} and run the download again"
            ) from exc
        raise DownloadError(f"cannot write {part}: {exc.strerror or exc}") from exc
    if progress is not None:
        progress(done, total or 0)
    if total is not None and done != total:
        raise DownloadError(
            f"the connection to {_host(url)} ended after {human_size(done)} of "
            f"{human_size(total)}; the partial file was kept, run the download again to continue"
        )
    return done
