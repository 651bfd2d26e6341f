"""Reading JSON files: `read_json` with clear errors and bounds, `json_safe` for writing numbers.

Files are written through `scubasteve.core.atomic` (`atomic_write_json`), never here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scubasteve.core.errors import InputError, os_error_problem

#: JSON nested deeper than this is refused: no annotation format needs it, and deeper documents
#: would exhaust Python's recursion in the code that walks them.
MAX_JSON_DEPTH = 64


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """How deeply lists and objects nest in JSON text (brackets inside strings do not count).

    Works on the text at C speed (a regex and numpy), so that a large file costs no Python walk.
    """
    bare = _JSON_STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = np.isin(codes, (91, 123)).astype(np.int32) - np.isin(codes, (93, 125))
    return int(np.cumsum(steps).max(initial=0))


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
    """Parse a JSON file; `InputError` names the file and the line/column of a syntax error."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(os_error_problem(exc, "cannot read"), path) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at offset {exc.start})", path) from exc
    if not text.strip():
        raise InputError("the file is empty (expected JSON)", path)
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", path
        ) from exc
    except RecursionError as exc:
        raise InputError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", path) from exc
    return data
