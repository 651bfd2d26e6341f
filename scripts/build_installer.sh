#!/usr/bin/env bash
# Build the Scuba Steve desktop app (Linux: dist/ScubaSteve/, macOS: dist/ScubaSteve.app) with
# PyInstaller and run the frozen `--self-test`; prints build time, bundle size and the report.
#
#   scripts/build_installer.sh [--dist DIR] [--work DIR] [--summary FILE] [--keep-work]
#
# Uses $PYTHON, else .venv/bin/python if present, else python3; that environment needs the
# project installed (`pip install -e ".[dev]"`). SCUBASTEVE_BUILD_DEBUG=1 builds with a console.
# Exit status: 0 built and self-test passed, 1 self-test failed, 2 build failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
echo "building with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
exec "$PYTHON" scripts/build_installer.py "$@"
