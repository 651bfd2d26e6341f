"""JSON files in and out: `read_json` with clear errors, and the atomic writers (from `core.atomic`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scubasteve.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from scubasteve.core.errors import InputError

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "read_json"]


def read_json(path: Path) -> Any:
    """Parse a JSON file; `InputError` names the file and the line/column of a syntax error."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError("file not found", path) from exc
    except IsADirectoryError as exc:
        raise InputError("is a folder, not a file", path) from exc
    except PermissionError as exc:
        raise InputError("cannot read: permission denied", path) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at offset {exc.start})", path) from exc
    if not text.strip():
        raise InputError("the file is empty (expected JSON)", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", path
        ) from exc
