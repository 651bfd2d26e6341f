"""Old name of `io/json_files.py` (JSON reading) plus the atomic writers of `core/atomic.py`.

Kept only while other branches still import it (`bench/proposals.py` and `bench/clicks.py` import
`atomic_write_json` from here): new code imports `scubasteve.io.json_files` or
`scubasteve.core.atomic`. Delete this module once nothing imports it.
"""

from __future__ import annotations

from scubasteve.core.atomic import (
    STALE_TEMPORARY_SECONDS,
    AlreadyExists,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_stale_temporaries,
)
from scubasteve.io.json_files import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    json_depth,
    json_safe,
    read_json,
)

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "STALE_TEMPORARY_SECONDS",
    "AlreadyExists",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clean_stale_temporaries",
    "json_depth",
    "json_safe",
    "read_json",
]
