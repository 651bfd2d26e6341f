"""The download of IS-Net's published weights (`isnet-general-use`), from a local HTTP server.

The file served has the published network's layout (int8, zero weights, 44 MB: the content check
refuses a thinner network under the published name), so the whole path runs as for a user: fetch,
size, SHA-256, the content check, the atomic install, and the engine registry finding it. A wrong
checksum, a cut connection and an HTML page are refused with nothing installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.file_server import FileServer
from helpers.isnet_server import NAME, full_layout_onnx, other_full_layout_onnx, serve_isnet

from scubasteve import weights
from scubasteve.cli import main
from scubasteve.core.paths import models_dir
from scubasteve.weights import fetch as weights_fetch
from scubasteve.weights.store import read_sidecar

HTML = b"<!DOCTYPE html><html><body>Rate limit exceeded. Sign in to continue.</body></html>"


@pytest.fixture(scope="module")
def full_onnx(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return full_layout_onnx(tmp_path_factory.mktemp("isnet") / "full.onnx")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    srv = FileServer()
    monkeypatch.setattr(weights_fetch, "PROGRESS_INTERVAL_S", 0.0)
    yield srv
    srv.close()


def _leftovers() -> list[str]:
    folder = models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_installs_isnet_and_the_default_engine_takes_it(
    server: FileServer, full_onnx: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scubasteve.inference.engines import engine_status, ensemble_plan

    serve_isnet(server, full_onnx, monkeypatch)
    assert not {s.name: s for s in engine_status()}["isnet"].available
    seen: list[tuple[int, int | None]] = []
    path = weights.download(NAME, progress=lambda done, total: seen.append((done, total)))
    assert path == models_dir() / "isnet-general-use.onnx"
    assert path.read_bytes() == full_onnx
    assert seen[-1] == (len(full_onnx), len(full_onnx))
    assert _leftovers() == ["isnet-general-use.json", "isnet-general-use.onnx"]
    assert read_sidecar(NAME)["sha256"] == hashlib.sha256(full_onnx).hexdigest()
    status = {s.name: s for s in engine_status()}
    assert status["isnet"].available, status["isnet"].reason
    if ensemble_plan().learned != "sam2":  # SAM 2 weights would come first
        assert ensemble_plan().learned == "isnet"


def test_a_cut_connection_installs_nothing_and_the_next_run_resumes(
    server: FileServer, full_onnx: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_isnet(server, full_onnx, monkeypatch)
    server.plan = ["drop"]
    with pytest.raises(weights.DownloadError, match=r"broke .* kept"):
        weights.download(NAME)
    assert weights.installed_path(NAME) is None
    assert not (models_dir() / "isnet-general-use.onnx").exists()
    kept = (models_dir() / "isnet-general-use.onnx.part").stat().st_size
    assert 0 < kept < len(full_onnx)
    path = weights.download(NAME)
    assert server.requests[-1][1].get("Range") == f"bytes={kept}-"
    assert path.read_bytes() == full_onnx


def test_a_file_with_another_checksum_is_deleted_and_says_so(
    server: FileServer, full_onnx: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_isnet(server, full_onnx, monkeypatch)
    # Same size, a valid IS-Net of the published layout, but not the published bytes.
    server.files["/isnet-general-use.onnx"] = other_full_layout_onnx(full_onnx)
    with pytest.raises(weights.ChecksumMismatch, match="SHA-256") as err:
        weights.download(NAME)
    assert "deleted" in str(err.value)
    assert _leftovers() == []
    assert weights.installed_path(NAME) is None


@pytest.mark.parametrize("pinned", [True, False], ids=["size-pinned", "nothing-pinned"])
def test_an_html_page_instead_of_the_weights_is_refused(
    server: FileServer, full_onnx: bytes, monkeypatch: pytest.MonkeyPatch, pinned: bool
) -> None:
    serve_isnet(server, full_onnx, monkeypatch, pinned=pinned)
    server.files["/isnet-general-use.onnx"] = HTML
    with pytest.raises(weights.ChecksumMismatch) as err:
        weights.download(NAME)
    # With the size pinned the size says it; without, the content check reads a web page.
    assert ("bytes" if pinned else "web page") in str(err.value)
    assert _leftovers() == []


def test_a_thinner_isnet_is_refused_under_the_published_name(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from helpers.isnet import thin_state, write_onnx

    thin = write_onnx(tmp_path / "thin.onnx", thin_state(16)).read_bytes()
    serve_isnet(server, thin, monkeypatch, pinned=False)
    with pytest.raises(weights.ChecksumMismatch, match="thinner IS-Net"):
        weights.download(NAME)
    assert _leftovers() == []


def test_cli_downloads_isnet(
    server: FileServer,
    full_onnx: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_isnet(server, full_onnx, monkeypatch)
    assert main(["models", "download", NAME]) == 0
    assert f"installed {NAME}" in capsys.readouterr().out
    server.files["/isnet-general-use.onnx"] = HTML
    assert main(["models", "download", NAME, "--force"]) == 2
    assert "not the expected file" in capsys.readouterr().err
    assert (models_dir() / "isnet-general-use.onnx").read_bytes() == full_onnx  # old file kept
