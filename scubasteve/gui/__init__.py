"""The desktop window (the only package that imports Qt)."""

from scubasteve.gui import qtfix as _qtfix  # noqa: F401  (must run before any signal is emitted)
