"""Reading JSON files: `read_json` with clear errors and bounds, `json_safe` for writing numbers.

Files are written through `scubasteve.core.atomic` (`atomic_write_json`), never here. Only a
regular file of bounded size is read (a FIFO named `*.json` is refused, not waited on), and its
nesting is measured before parsing, in linear time and constant memory (`json_depth`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.errors import InputError
from scubasteve.core.files import read_regular_bytes

#: JSON nested deeper than this is refused: no annotation format needs it, and deeper documents
#: would exhaust Python's recursion in the code that walks them.
MAX_JSON_DEPTH = 64
#: JSON files larger than this are not read (a 448 MB COCO train2017 file reads; parsing takes
#: about ten times the file's size in memory).
MAX_JSON_BYTES = 2 << 30
#: Bytes of JSON text `json_depth` looks at in one step: its memory does not grow with the text.
_DEPTH_BLOCK = 1 << 18
_QUOTE, _BACKSLASH = 34, 92


def _closes(codes: np.ndarray) -> np.ndarray:
    closes: np.ndarray = (codes == 93) | (codes == 125)
    return closes


def json_depth(text: str | bytes) -> int:
    """How deeply lists and objects nest in JSON text (brackets inside strings do not count).

    One pass over the text in blocks of `_DEPTH_BLOCK` bytes, vectorised with numpy inside a
    block; between blocks it carries whether it is inside a string, how many backslashes ended
    the block and the depth. Linear time and constant memory whatever the text holds: the regex
    that stripped strings before cost about 120 bytes of memory per character of one string.
    Works on bytes as on text (JSON's structural characters are ASCII, which no UTF-8 sequence
    contains). For valid JSON the count is exact; invalid JSON is refused by the parser anyway.
    """
    deepest = depth = 0
    in_string = 0
    backslashes = 0  # the run of backslashes that ended the previous block
    view = memoryview(text) if isinstance(text, bytes) else None
    for start in range(0, len(text), _DEPTH_BLOCK):
        block: bytes | memoryview
        if view is not None:
            block = view[start : start + _DEPTH_BLOCK]
        else:
            block = str(text[start : start + _DEPTH_BLOCK]).encode("utf-8", "surrogatepass")
        codes = np.frombuffer(block, dtype=np.uint8)
        n = len(codes)
        quote_or_backslash = (codes == _QUOTE) | (codes == _BACKSLASH)
        if not in_string and not quote_or_backslash.any():  # no string starts or ends here
            opens = (codes == 91) | (codes == 123)
            running = depth + np.cumsum(opens.astype(np.int32) - _closes(codes), dtype=np.int64)
            deepest, depth, backslashes = max(deepest, int(running.max())), int(running[-1]), 0
            continue
        if in_string and not quote_or_backslash.any():  # inside one long string (embedded data)
            backslashes = 0
            continue
        index = np.arange(n, dtype=np.int64)
        # the last index at or before each position that is not a backslash
        last = np.maximum.accumulate(np.where(codes == _BACKSLASH, -1 - backslashes, index))
        before = np.empty(n, dtype=np.int64)
        before[0] = -1 - backslashes
        before[1:] = last[:-1]
        escaped = ((index - 1 - before) & 1).astype(bool)  # an odd run of backslashes before it
        quotes = np.cumsum((codes == _QUOTE) & ~escaped, dtype=np.int64)
        outside = ((quotes + in_string) & 1) == 0
        opens = ((codes == 91) | (codes == 123)) & outside
        closes = _closes(codes) & outside
        running = depth + np.cumsum(opens.astype(np.int32) - closes, dtype=np.int64)
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
        in_string = int((quotes[-1] + in_string) & 1)
        backslashes = int(n - 1 - last[-1])
    return deepest


def json_safe(value: Any) -> tuple[Any, int]:
    """The value with NaN and infinite numbers as null, and how many were replaced.

    JSON has no NaN; Python's reader accepts it but strict readers (and our writer) do not.
    """
    try:
        json.dumps(value, allow_nan=False)  # the common case, checked at C speed
        return value, 0
    except ValueError:
        pass
    if isinstance(value, float) and not math.isfinite(value):
        return None, 1
    if isinstance(value, dict):
        pairs = [(k, json_safe(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, list):
        items = [json_safe(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0


def object_at(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`data[key]` when it is a JSON object, else an empty one (a missing or malformed part)."""
    found = data.get(key)
    return dict(found) if isinstance(found, Mapping) else {}


def read_json(path: Path) -> Any:
    """Parse a JSON file; `InputError` names the file and the line/column of a syntax error.

    Only a regular file of at most `MAX_JSON_BYTES` is read (a FIFO or a link to a device named
    `*.json` is refused, not read), nested at most `MAX_JSON_DEPTH` levels deep.
    """
    path = Path(path)
    raw = read_regular_bytes(path, MAX_JSON_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at offset {exc.start})", path) from exc
    if not text.strip():
        raise InputError("the file is empty (expected JSON)", path)
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", path)
    del raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", path
        ) from exc
    except RecursionError as exc:
        raise InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", path) from exc
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits by default)
        reason = str(exc).split(";")[0]
        raise InputError(f"holds a number that cannot be read: {reason}", path) from exc
    return data
