"""The weights dialog downloads in the background: progress shows, Cancel stops it at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.file_server import FileServer
from PySide6.QtCore import Qt

from scubasteve.core.paths import models_dir
from scubasteve.weights import registry as weights_registry
from scubasteve.weights.registry import ModelInfo

pytestmark = pytest.mark.gui

#: 16 MiB at 64 KiB per 20 ms: about 5 s to send, far longer than a prompt cancel takes.
PAYLOAD = b"\x89HDF\r\n\x1a\n" + bytes(16 << 20)


@pytest.fixture
def slow_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    server = FileServer()
    server.files["/slow.h5"] = PAYLOAD
    server.plan = ["slow"]
    info = ModelInfo(
        name="slow", kind="maskrcnn", filename="slow.h5", url=server.url("/slow.h5"),
        size=len(PAYLOAD), sha256=None, license="test", description="a slow download",
        format="h5",
    )  # fmt: skip
    monkeypatch.setattr(weights_registry, "KNOWN_MODELS", (info,))
    yield server
    server.close()


def test_cancel_stops_a_download_in_progress_and_installs_nothing(qtbot, slow_model) -> None:
    from scubasteve.gui.views.weights_dialog import WeightsDialog

    dialog = WeightsDialog()
    qtbot.addWidget(dialog)
    assert dialog.list.item(0).data(256) == "slow"
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=10000)  # progress is shown
    assert not dialog.cancel_button.isHidden() and not dialog.download_button.isEnabled()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.status.text() == "Failed: cancelled", timeout=5000)
    part = models_dir() / "slow.h5.part"
    assert 0 < part.stat().st_size < len(PAYLOAD), "stopped before the end"
    assert not (models_dir() / "slow.h5").exists()
    assert dialog.download_button.isEnabled() and dialog.cancel_button.isHidden()
    assert "not installed" in dialog.list.item(0).text()


def test_closing_the_dialog_cancels_its_download(qtbot, slow_model) -> None:
    from scubasteve.gui.views.weights_dialog import WeightsDialog

    dialog = WeightsDialog()
    qtbot.addWidget(dialog)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=10000)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # reject(): cancels and waits for the job
    assert dialog._pool.activeThreadCount() == 0
    assert (models_dir() / "slow.h5.part").stat().st_size < len(PAYLOAD)
    assert not (models_dir() / "slow.h5").exists()


def test_the_dialog_offers_isnet_and_downloads_it(qtbot, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from helpers.isnet_server import NAME, full_layout_onnx, serve_isnet

    from scubasteve.gui.controllers.engine_host import RECOMMENDED_MODEL
    from scubasteve.gui.views.weights_dialog import WeightsDialog

    assert RECOMMENDED_MODEL == NAME
    plain = WeightsDialog()
    qtbot.addWidget(plain)
    names = [plain.list.item(r).data(256) for r in range(plain.list.count())]
    assert NAME in names, names  # offered with the real registry
    server = FileServer()
    try:
        serve_isnet(server, full_layout_onnx(tmp_path / "full.onnx"), monkeypatch)
        dialog = WeightsDialog(select=RECOMMENDED_MODEL)
        qtbot.addWidget(dialog)
        assert dialog._selected() == NAME and "Recommended: isnet-general-use" in dialog.info.text()
        assert "IS-Net" in dialog.list.currentItem().text()
        assert "not installed" in dialog.list.currentItem().text()
        installed: list[str] = []
        dialog.installed.connect(installed.append)
        dialog.download_button.click()
        qtbot.waitUntil(lambda: bool(installed), timeout=60000)
        assert installed == [str(models_dir() / "isnet-general-use.onnx")]
        row = names.index(NAME)
        assert "not installed" not in dialog.list.item(row).text()
    finally:
        server.close()
