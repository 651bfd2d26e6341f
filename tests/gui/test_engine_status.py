"""The window says which engine serves, and recommends IS-Net's download while no learned engine does.

The real engine registry builds the engines here (`default_factory`); IS-Net is a thin random
network installed under a name of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.isnet import thin_state, write_ours

from scubasteve.gui.controllers.engine_host import RECOMMENDED_MODEL, EngineInfo, default_factory

pytestmark = pytest.mark.gui


def _started(window, qtbot, name: str) -> EngineInfo:  # type: ignore[no-untyped-def]
    infos: list[EngineInfo] = []
    window.engine.engine_ready.connect(infos.append)
    window.engine.start(name, "cpu")
    qtbot.waitUntil(lambda: bool(infos), timeout=60000)
    return infos[-1]


def _install_thin_isnet(tmp_path: Path) -> None:
    from scubasteve import weights

    weights.import_file(
        "thin-isnet", write_ours(tmp_path / "thin.pt", thin_state(16)), kind="isnet"
    )


def test_without_weights_the_status_bar_recommends_the_isnet_download(
    make_window, image_folder, qtbot, monkeypatch
):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("scubasteve.inference.engines.sam2_problem", lambda weights=None: "no")
    window = make_window(image_folder, factory=default_factory)
    info = _started(window, qtbot, "ensemble")
    assert info.serving == ("classic",)
    assert window.status.engine.text() == "engine: ensemble (classic)"
    assert "models download isnet-general-use" in info.weights_missing
    assert window.status.weights.isVisible()
    assert "isnet-general-use" in window.status.weights.toolTip()
    assert "DeepMask" not in window.status.weights.toolTip()

    opened: list[object] = []
    from scubasteve.gui.views import weights_dialog

    monkeypatch.setattr(weights_dialog.WeightsDialog, "open", lambda self: opened.append(self))
    window.status.weights.click()
    assert len(opened) == 1 and opened[0]._selected() == RECOMMENDED_MODEL  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", ["ensemble", "isnet"])
def test_with_isnet_installed_the_status_bar_names_it_and_stops_nagging(
    make_window, image_folder, qtbot, monkeypatch, tmp_path, engine
):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("scubasteve.inference.engines.sam2_problem", lambda weights=None: "no")
    _install_thin_isnet(tmp_path)
    window = make_window(image_folder, factory=default_factory)
    info = _started(window, qtbot, engine)
    if engine == "ensemble":
        assert window.status.engine.text() == "engine: ensemble (isnet + classic)"
        assert window.status.engine.toolTip() == "IS-Net and the classic engine, ranked together"
    else:
        assert window.status.engine.text() == "engine: isnet"
    assert info.weights_missing == ""
    assert not window.status.weights.isVisible()


def test_a_deepmask_model_in_the_settings_does_not_stop_the_isnet_engine(tmp_path: Path) -> None:
    _install_thin_isnet(tmp_path)
    engine = default_factory("isnet", "cpu", "deepmask-t7")  # the settings' DeepMask model
    assert engine.name == "isnet" and [e.name for e in engine.engines] == ["isnet"]


def test_the_settings_dialog_offers_isnet_and_says_what_it_needs(qtbot, monkeypatch):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    from scubasteve.core.settings import Settings
    from scubasteve.gui.views.dialogs import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    row = dialog.engine.findText("isnet")
    assert row >= 0
    tip = dialog.engine.itemData(row, Qt.ItemDataRole.ToolTipRole)
    assert "models download isnet-general-use" in tip
    dialog.engine.setCurrentIndex(row)
    assert dialog.result_settings().engine == "isnet"
