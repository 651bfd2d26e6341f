"""Progress bars for long CLI work (tqdm on stderr, silent when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def bar(items: Iterable[T], total: int, desc: str) -> Iterable[T]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit="file", disable=None, leave=False)
