"""Keystroke-level model (Card, Moran and Newell, 1980) estimates of human time per object (no Qt).

Operator times in seconds, the textbook values:

- K = 0.28: press a key (average skilled typist, about 40 words per minute)
- P = 1.10: point with the mouse to a target on the screen
- B = 0.10: press or release a mouse button
- M = 1.35: mental preparation (deciding, looking for the right proposal)
- H = 0.40: move a hand between keyboard and mouse (not charged: the left hand stays on the
  keyboard, the right on the mouse, as the window's shortcuts are designed for)
- R: waiting for the program; the measured proposal latency is used.
"""

from __future__ import annotations

from dataclasses import dataclass

K, P, B, M, H = 0.28, 1.10, 0.10, 1.35, 0.40


@dataclass(frozen=True)
class ObjectActions:
    """What the simulated annotator did for one object."""

    label_keys: int  # keys typed to change the label (0 when it stayed)
    pick_keys: int  # number keys pressed to choose proposals
    clicks: int  # corrective clicks inside the box
    wait_seconds: float  # total time spent waiting for proposals (box and clicks)


def human_seconds(a: ObjectActions) -> float:
    """KLM estimate for one object: box drag, look, optional picks and clicks, Enter."""
    label = (M + a.label_keys * K) if a.label_keys else 0.0
    box = M + P + B + P + B  # decide, point to a corner, press, drag to the other corner, release
    look = M + a.pick_keys * K  # compare the ten proposals, press the best one's number
    clicks = a.clicks * (M + P + B + B)  # decide where, point, click
    accept = K  # Enter
    return label + box + a.wait_seconds + look + clicks + accept


CONSTANTS_TEXT = (
    f"KLM operators: K={K} s per key, P={P} s per pointing, B={B} s per button press or release, "
    f"M={M} s per mental preparation, H={H} s homing (not charged: one hand on keys, one on the "
    "mouse); waits R = the measured proposal latency. Per object: [M + K per label key] + "
    "(M + P + B + P + B) box + R + (M + K per pick) + clicks x (M + P + 2B + R) + K (Enter)."
)
