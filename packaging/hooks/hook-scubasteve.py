"""PyInstaller hook for Scuba Steve itself.

The CLI loads its subcommand modules by name (`importlib.import_module`) and engines are created
by name, so import analysis would miss them: collect every module.
"""

from PyInstaller.utils.hooks import collect_submodules

hiddenimports = collect_submodules("scubasteve")
