"""`python -m scubasteve` is the same as the `scubasteve` command."""

from scubasteve.cli import main

raise SystemExit(main())
