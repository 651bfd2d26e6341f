"""Where each proposal sits in the strip: stable while they stream in, sorted once at the end.

Proposals arrive one by one (ADR 0102), and a slower engine may re-rank them up to a second after
the first ones were shown. Sorting on every arrival moved masks under the user's eyes, so a quick
key picked another mask than the one seen. Now a streamed proposal takes the next free slot and
keeps it; when the engine's final, ranked list arrives the strip is sorted once and the slots that
moved are marked (ADR 0508).
"""

from __future__ import annotations

from dataclasses import dataclass

from scubasteve.gui.render import ProposalView

#: Slots a key can pick (1 … 9, 0).
KEYED_SLOTS = 10

#: A key pressed this soon after the re-sort was meant for the slots as they were (seconds): a
#: person needs about a quarter of a second to see a change and react.
RERANK_GRACE_S = 0.3


def same_mask(a: ProposalView, b: ProposalView) -> bool:
    """The same mask (engines may re-create proposal objects when they re-rank)."""
    if a is b:
        return True
    pa, pb = a.proposal.patch, b.proposal.patch
    return (pa.x, pa.y, pa.mask.shape) == (pb.x, pb.y, pb.mask.shape) and bool(
        (pa.mask == pb.mask).all()
    )


def find(views: list[ProposalView], view: ProposalView | None) -> int:
    """Index of `view`'s mask in `views`, -1 if absent."""
    if view is None:
        return -1
    return next((i for i, v in enumerate(views) if same_mask(v, view)), -1)


@dataclass(frozen=True)
class Settled:
    """The final order. `moved[i]`: the slot view i had before the sort, when it had another one
    (-1: it stayed or is new). `current`: where the kept view is now (-1 when none was kept)."""

    views: list[ProposalView]
    moved: list[int]
    current: int

    @property
    def reranked(self) -> bool:
        return any(m >= 0 for m in self.moved)


def settle(
    shown: list[ProposalView], final: list[ProposalView], keep: ProposalView | None
) -> Settled:
    """The engine's ranked `final` list as the strip shows it after streaming `shown`.

    `keep` (the proposal the user picked, if any) stays in the list even when the engine's final
    ten left it out: it takes the last keyed slot.
    """
    views = list(final)
    if keep is not None and find(views, keep) < 0:
        views = [*views[: KEYED_SLOTS - 1], keep]
    before = [find(shown, v) for v in views]
    moved = [b if b >= 0 and b != i else -1 for i, b in enumerate(before)]
    return Settled(views, moved, find(views, keep))
