"""Downloads from a local HTTP server on 127.0.0.1: resume, checksums, refusals, full disk."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.file_server import DROP_AFTER, FileServer

from scubasteve import weights
from scubasteve.cli import main
from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import InputError
from scubasteve.core.paths import models_dir
from scubasteve.weights import fetch as weights_fetch
from scubasteve.weights import registry as weights_registry
from scubasteve.weights.registry import ModelInfo
from scubasteve.weights.store import read_sidecar

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PAYLOAD = HDF5_MAGIC + bytes((i * 7 + i // 251) % 256 for i in range(300_000))
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    srv.files["/tiny.h5"] = PAYLOAD
    yield srv
    srv.close()


def _entry(name: str, url: str | None, **kw: object) -> ModelInfo:
    fields: dict[str, object] = dict(
        kind="maskrcnn", filename=f"{name}.h5", url=url, size=len(PAYLOAD), sha256=SHA,
        license="test", description=f"test model {name}", format="h5",
    )  # fmt: skip
    fields.update(kw)
    return ModelInfo(name=name, **fields)  # type: ignore[arg-type]


@pytest.fixture
def registry(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> FileServer:
    models = (
        _entry("tiny", server.url("/tiny.h5")),
        _entry("nosum", server.url("/tiny.h5"), size=None, sha256=None),
        _entry("mirrored", server.url("/gone.h5"), mirrors=(server.url("/tiny.h5"),)),
    )
    monkeypatch.setattr(weights_registry, "KNOWN_MODELS", models)
    monkeypatch.setitem(weights_registry.DEFAULT_MODELS, "maskrcnn", "tiny")
    monkeypatch.setattr(weights_fetch, "PROGRESS_INTERVAL_S", 0.0)
    return server


def _leftovers() -> list[str]:
    folder = models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_verifies_checksum_and_installs_atomically(registry: FileServer) -> None:
    calls: list[tuple[int, int | None]] = []
    path = weights.download("tiny", progress=lambda d, t: calls.append((d, t)))
    assert path == models_dir() / "tiny.h5"
    assert path.read_bytes() == PAYLOAD
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert _leftovers() == ["tiny.h5", "tiny.json"]  # no .part left behind
    assert read_sidecar("tiny")["sha256"] == SHA
    assert weights.resolve_weights("tiny") == path


def test_resume_after_broken_connection_asks_for_the_rest(registry: FileServer) -> None:
    registry.plan = ["drop"]
    with pytest.raises(weights.DownloadError, match=r"broke .* kept"):
        weights.download("tiny")
    part = models_dir() / "tiny.h5.part"
    kept = part.stat().st_size  # whole chunks received before the break (the last may be lost)
    assert 0 < kept <= DROP_AFTER
    assert part.read_bytes() == PAYLOAD[:kept]
    assert weights.installed_path("tiny") is None
    assert weights.list_models()[0].partial_bytes == kept

    path = weights.download("tiny")
    assert registry.requests[-1][1].get("Range") == f"bytes={kept}-"
    assert registry.requests[-1][1].get("If-Range") == '"v1"'
    assert path.read_bytes() == PAYLOAD
    assert not part.exists()


def test_resume_starts_over_when_the_server_ignores_range(registry: FileServer) -> None:
    registry.plan = ["drop", "norange"]
    with pytest.raises(weights.DownloadError):
        weights.download("tiny")
    assert weights.download("tiny").read_bytes() == PAYLOAD


def test_wrong_checksum_deletes_the_download_and_says_so(registry: FileServer) -> None:
    registry.plan = ["wrong"]
    with pytest.raises(weights.ChecksumMismatch, match="deleted") as err:
        weights.download("tiny")
    assert "SHA-256" in str(err.value)
    assert _leftovers() == []


def test_html_page_instead_of_weights_is_refused_without_checksum(registry: FileServer) -> None:
    registry.files["/tiny.h5"] = b"<html><body>Sign in to continue</body></html>"
    with pytest.raises(weights.ChecksumMismatch, match="HTML"):
        weights.download("nosum")
    assert _leftovers() == []


def test_download_without_published_checksum_records_the_digest(registry: FileServer) -> None:
    path = weights.download("nosum")
    assert path.read_bytes() == PAYLOAD
    assert read_sidecar("nosum")["sha256"] == SHA


def test_connection_refused_gives_a_clear_message(
    registry: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    dead = _entry("tiny", f"http://127.0.0.1:{port}/tiny.h5")
    monkeypatch.setattr(weights_registry, "KNOWN_MODELS", (dead,))
    with pytest.raises(weights.DownloadError) as err:
        weights.download("tiny")
    message = str(err.value)
    assert "refused" in message
    assert "scubasteve models import tiny FILE" in message
    assert _leftovers() == []


def test_connection_problems_are_told_apart_by_type_not_by_their_text() -> None:
    import requests

    from scubasteve.weights.fetch import _connect_problem

    url = "https://example.org/m.h5"
    unresolved = requests.exceptions.ConnectionError("Max retries exceeded")
    unresolved.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert "cannot find the server example.org" in _connect_problem(url, unresolved)
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    assert "refused" in _connect_problem(url, refused)
    # A message that only says so is no proof: a proxy page may say "refused" for other reasons.
    worded = requests.exceptions.ConnectionError("proxy said: connection refused; getaddrinfo")
    assert _connect_problem(url, worded).startswith("cannot connect to example.org")


def test_server_error_is_reported_with_its_status(registry: FileServer) -> None:
    registry.plan = ["500"]
    with pytest.raises(weights.DownloadError, match="HTTP 500"):
        weights.download("tiny")
    assert weights.installed_path("tiny") is None


def test_missing_file_on_main_address_falls_back_to_mirror(registry: FileServer) -> None:
    path = weights.download("mirrored")
    assert path.read_bytes() == PAYLOAD
    assert [r[0] for r in registry.requests] == ["/gone.h5", "/tiny.h5"]
    assert read_sidecar("mirrored")["source"] == registry.url("/tiny.h5")


class _FullDisk:
    """A file object that raises ENOSPC once `room` bytes were written."""

    def __init__(self, path: Path, mode: str, room: int):
        self.fh = open(path, mode)  # noqa: SIM115
        self.room = room

    def write(self, data: bytes) -> int:
        if self.room < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.fh, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def test_full_disk_leaves_nothing_half_written(
    registry: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        weights_fetch, "_open_part", lambda path, mode: _FullDisk(path, mode, room=70_000)
    )
    with pytest.raises(weights.DownloadError, match="disk is full"):
        weights.download("tiny")
    assert _leftovers() == []


def test_too_little_free_space_is_refused_before_downloading(
    registry: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights_fetch, "_free_bytes", lambda folder: 1000)
    with pytest.raises(weights.DownloadError, match="not enough free disk space"):
        weights.download("tiny")
    assert not (models_dir() / "tiny.h5").exists()


def test_cancelled_download_stops_at_once_and_keeps_only_the_partial_file(
    registry: FileServer,
) -> None:
    cancel, at_cancel = CancelToken(), []

    def progress(done: int, total: int | None) -> None:
        if done >= 65_536 and not at_cancel:
            at_cancel.append(done)
            cancel.cancel()

    registry.plan = ["slow"]  # the server is still sending when the cancel comes
    with pytest.raises(Cancelled):
        weights.download("tiny", progress=progress, cancel=cancel)
    part = models_dir() / "tiny.h5.part"
    assert part.stat().st_size == at_cancel[0], "not one chunk was written after the cancel"
    assert not (models_dir() / "tiny.h5").exists(), "no model file until it is whole"
    assert all(name.startswith("tiny.h5.part") for name in _leftovers()), _leftovers()
    assert weights.download("tiny").read_bytes() == PAYLOAD  # resumed from the partial file
    assert registry.requests[-1][1].get("Range") == f"bytes={at_cancel[0]}-"


def test_installed_model_is_not_downloaded_again_unless_forced(registry: FileServer) -> None:
    weights.download("tiny")
    weights.download("tiny")
    assert len(registry.requests) == 1
    weights.download("tiny", force=True)
    assert len(registry.requests) == 2


def test_resolving_a_missing_model_never_downloads(registry: FileServer) -> None:
    with pytest.raises(weights.WeightsNotInstalled):
        weights.resolve_weights(None, kind="maskrcnn")
    with pytest.raises(weights.WeightsNotInstalled):
        weights.resolve_weights("tiny")
    assert registry.requests == []


def test_trained_model_cannot_be_downloaded(registry: FileServer, tmp_path: Path) -> None:
    src = tmp_path / "m.pt"
    src.write_bytes(b"PK\x03\x04 weights")
    weights.register_trained("mine", "deepmask", src, {})
    with pytest.raises(InputError, match="trained here"):
        weights.download("mine")


def test_cli_download_installs_the_model(
    registry: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "download", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "installed tiny" in out and SHA in out
    assert (models_dir() / "tiny.h5").read_bytes() == PAYLOAD


def test_cli_download_failure_exits_with_message(
    registry: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.plan = ["500"]
    assert main(["models", "download", "tiny"]) == 2
    assert "HTTP 500" in capsys.readouterr().err
