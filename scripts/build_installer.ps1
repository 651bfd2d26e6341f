# Build the Scuba Steve desktop app on Windows (dist\ScubaSteve\ScubaSteve.exe) with PyInstaller
# and run the frozen `--self-test`; prints build time, bundle size and the self-test report.
#
#   powershell -ExecutionPolicy Bypass -File scripts\build_installer.ps1 [--dist DIR] [--summary FILE]
#
# Uses $env:PYTHON, else .venv\Scripts\python.exe if present, else python; that environment needs
# the project installed (`pip install -e ".[dev]"`). $env:SCUBASTEVE_BUILD_DEBUG=1 builds with a
# console window. The app has no console, so the self-test report is read from a file and printed.
# Exit status: 0 built and self-test passed, 1 self-test failed, 2 build failed.
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)

$python = $env:PYTHON
if (-not $python) {
    if (Test-Path ".venv\Scripts\python.exe") { $python = ".venv\Scripts\python.exe" } else { $python = "python" }
}
& $python -c "import sys; print('building with', sys.executable, sys.version.split()[0])"
& $python scripts/build_installer.py @args
exit $LASTEXITCODE
