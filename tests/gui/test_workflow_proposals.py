"""While proposals are shown, undo acts on them and nothing is lost or moved under the user (issue 22).

Items 10 (removing a click gives back what was shown before it), 11 (Ctrl+Z with proposals open never
undoes the document behind them), 12 (a new box sets the previous box's proposals aside, one Ctrl+Z
away) and 16 (slots stay where they are while proposals stream in; one marked re-sort at the end).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.gui_fakes import FakeProposer
from helpers.gui_input import accept_box, click, drag_box, key
from PySide6.QtCore import Qt

from scubasteve.core.geometry import Box
from scubasteve.inference.base import Proposal

pytestmark = pytest.mark.gui

CTRL = Qt.KeyboardModifier.ControlModifier


def _settled(window, after: int = 0) -> bool:  # type: ignore[no-untyped-def]
    r = window.proposals.result
    return r is not None and not r.partial and r.request_id > after


def _masks(window) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    return [v.proposal.patch.to_full(240, 320) for v in window.proposals.result.views]


def test_removing_a_click_gives_back_the_proposals_and_the_pick_from_before_it(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)
    first = window.proposals.result.request_id
    click(window, 160, 120)  # click 1
    qtbot.waitUntil(lambda: _settled(window, first), timeout=5000)
    key(window, Qt.Key.Key_3)  # the user prefers proposal 3 after click 1
    after_one = _masks(window)
    second = window.proposals.result.request_id
    click(window, 150, 110, Qt.MouseButton.RightButton)  # click 2 changes the masks
    qtbot.waitUntil(lambda: _settled(window, second), timeout=5000)
    calls = len(window.proposer.calls)

    key(window, Qt.Key.Key_Backspace)  # click 2 goes, and so does its effect
    assert len(window.proposals.points) == 1
    assert window.proposals.current == 2, "the proposal picked before the click is current again"
    assert all(np.array_equal(a, b) for a, b in zip(_masks(window), after_one, strict=True))
    assert len(window.proposer.calls) == calls, "given back at once, without asking the engine"
    assert [m.childItems()[0].text() for m in window.scene._markers] == ["1"]

    key(window, Qt.Key.Key_Z, CTRL)  # click 1 goes too: the box's own proposals, as first shown
    assert window.proposals.points == () and window.proposals.current == 0
    assert window.proposals.result.request_id == first


def test_ctrl_z_with_proposals_open_never_undoes_an_accepted_object(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    window.annotator.set_label("dog")
    accept_box(window, qtbot, Box(10, 10, 70, 60))
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)

    key(window, Qt.Key.Key_Z, CTRL)  # no click placed: the box (its proposals) goes
    assert not window.proposals.active
    assert len(window.documents.current.doc.annotations) == 1, "the accepted dog is still there"
    key(window, Qt.Key.Key_Z, CTRL)  # nothing open any more: now the document's undo
    assert window.documents.current.doc.annotations == []


def test_a_new_box_sets_the_shown_proposals_aside_and_ctrl_z_brings_them_back(
    make_window, image_folder, qtbot
):
    window = make_window(image_folder)
    messages: list[str] = []
    window.messages.said.connect(messages.append)
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)
    first_box = window.proposals.box
    key(window, Qt.Key.Key_4)  # a good one, about to be lost
    good = window.proposals.result.views[3].proposal.patch
    first = window.proposals.result.request_id

    drag_box(window, Box(10, 10, 70, 60))
    qtbot.waitUntil(lambda: _settled(window, first), timeout=5000)
    assert any("Ctrl+Z" in m and "previous box" in m for m in messages), messages

    key(window, Qt.Key.Key_Z, CTRL)
    assert window.proposals.box == first_box
    assert window.proposals.result.request_id == first
    assert window.proposals.current == 3
    assert window.proposals.result.views[window.proposals.current].proposal.patch is good
    assert window.scene._box_item.isVisible()


class _Reranking(FakeProposer):
    """Streams three proposals, then returns the final ten in another order (as a learned engine
    that arrives later and re-ranks would)."""

    def propose(self, box, k=10, points=(), *, previous=None, cancel=None, on_proposal=None):  # type: ignore[no-untyped-def]
        found = super().propose(box, k, points, previous=previous, cancel=cancel)
        if on_proposal is not None:
            for p in found[:3]:
                on_proposal(p)
            self.release.wait(5.0)
        # The late engine thinks the third and the fifth are best.
        order = [2, 4, 0, 1, 3, 5, 6, 7, 8, 9][: len(found)]
        return [Proposal(found[i].patch, 2.0 - 0.1 * n, "late", quality=found[i].quality)
                for n, i in enumerate(order)]  # fmt: skip


def _first_three(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    drag_box(window, Box(80, 60, 240, 180))
    qtbot.waitUntil(
        lambda: window.proposals.result is not None and len(window.proposals.result.views) == 3,
        timeout=5000,
    )


def test_slots_stay_put_while_proposals_stream_in_and_the_final_sort_is_marked(
    make_window, image_folder, qtbot
):
    proposer = _Reranking()
    window = make_window(image_folder, proposer)
    _first_three(window, qtbot)
    streamed = _masks(window)
    assert window.proposals.result.partial
    proposer.release.set()
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)
    final = _masks(window)
    # Sorted once everything has arrived: the engine's order, best first ...
    assert np.array_equal(final[0], streamed[2]) and np.array_equal(final[2], streamed[0])
    # ... and the strip says that the slots changed.
    assert "re-ranked" in window.strip._count.text()
    assert window.strip._buttons[0].property("moved") is True
    assert window.strip._buttons[5].property("moved") is not True  # a new arrival, not moved


def test_a_key_pressed_just_as_the_strip_is_re_sorted_picks_the_mask_the_user_saw(
    make_window, image_folder, qtbot
):
    proposer = _Reranking()
    window = make_window(image_folder, proposer)
    _first_three(window, qtbot)
    seen_in_slot_1 = _masks(window)[0]
    proposer.release.set()
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)
    key(window, Qt.Key.Key_1)  # pressed within the grace time after the re-sort
    shown = window.proposals.result.views[window.proposals.current].proposal.patch
    assert np.array_equal(shown.to_full(240, 320), seen_in_slot_1)

    window.proposals._reranked_at -= 10.0  # later on, keys mean the slots as they are now
    key(window, Qt.Key.Key_1)
    assert window.proposals.current == 0


def test_a_pick_made_while_streaming_keeps_its_mask_after_the_sort(
    make_window, image_folder, qtbot
):
    proposer = _Reranking()
    window = make_window(image_folder, proposer)
    _first_three(window, qtbot)
    key(window, Qt.Key.Key_2)
    picked = _masks(window)[1]
    proposer.release.set()
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)
    current = window.proposals.result.views[window.proposals.current].proposal.patch
    assert np.array_equal(current.to_full(240, 320), picked)


def test_proposals_set_aside_while_streaming_are_asked_for_again(make_window, image_folder, qtbot):
    proposer = _Reranking()
    window = make_window(image_folder, proposer)
    _first_three(window, qtbot)  # three of ten shown, the rest still coming
    first_box = window.proposals.box
    drag_box(window, Box(10, 10, 70, 60))  # the first request is cancelled half-way
    proposer.release.set()  # from now on requests run through
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)
    calls = len(proposer.calls)
    key(window, Qt.Key.Key_Z, CTRL)
    assert window.proposals.box == first_box
    qtbot.waitUntil(lambda: _settled(window), timeout=5000)  # not left half-streamed
    assert len(window.proposals.result.views) == 10 and len(proposer.calls) == calls + 1
