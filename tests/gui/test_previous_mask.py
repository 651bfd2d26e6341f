"""Corrective clicks hand the engine the mask they correct (`previous`); a new box hands it None."""

from __future__ import annotations

import pytest
from helpers.gui_input import click, drag_box, key
from PySide6.QtCore import Qt

from scubasteve.core.geometry import Box

pytestmark = pytest.mark.gui


def _wait_new_result(window, qtbot, after: int) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(
        lambda: (
            window.proposals.result is not None
            and not window.proposals.result.partial
            and window.proposals.result.request_id > after
        ),
        timeout=5000,
    )


def test_a_click_sends_the_shown_proposal_and_a_new_box_sends_none(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    proposer = window.proposer
    drag_box(window, Box(80, 60, 240, 180))
    _wait_new_result(window, qtbot, 0)
    key(window, Qt.Key.Key_3)  # the user looks at proposal 3 and corrects it
    shown = window.proposals.result.views[2].proposal.patch
    first = window.proposals.result.request_id
    click(window, 160, 120, Qt.MouseButton.RightButton)
    _wait_new_result(window, qtbot, first)
    assert proposer.previous[0] is None, "the box alone corrects nothing"
    assert proposer.previous[1] is shown

    # A second click corrects whatever is shown after the first one (here the top proposal).
    second = window.proposals.result.request_id
    shown = window.proposals.result.views[window.proposals.current].proposal.patch
    click(window, 150, 110)
    _wait_new_result(window, qtbot, second)
    assert proposer.previous[2] is shown
    assert len(window.proposals.result.points) == 2

    third = window.proposals.result.request_id
    drag_box(window, Box(20, 20, 120, 100))
    _wait_new_result(window, qtbot, third)
    assert proposer.previous[-1] is None and window.proposals.result.points == ()
    assert len(proposer.previous) == 4
