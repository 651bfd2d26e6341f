"""PyInstaller hook for Scuba Steve itself.

The CLI loads its subcommands and handlers by name (`importlib.import_module`, `lazy("mod:func")`),
and engines are created by name, so import analysis would miss them: collect every module.
"""

from PyInstaller.utils.hooks import collect_submodules

hiddenimports = collect_submodules("scubasteve")
