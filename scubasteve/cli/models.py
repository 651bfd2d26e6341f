"""`scubasteve models ...`: list, download, import, remove model weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from scubasteve.cli import lazy


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="manage model weights (offline import or download)")
    verbs = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = verbs.add_parser("list", help="known models, where they come from, and which are installed")
    p.add_argument(
        "-l", "--long", action="store_true", help="also show descriptions, addresses and checksums"
    )
    p.set_defaults(handler=lazy("scubasteve.inference.weights_cli:cmd_list"))

    p = verbs.add_parser("download", help="download a known model into the user cache")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="download again even if installed")
    p.set_defaults(handler=lazy("scubasteve.inference.weights_cli:cmd_download"))

    p = verbs.add_parser("import", help="install a weights file you already have (offline)")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.add_argument("--force", action="store_true", help="replace an installed file")
    p.add_argument(
        "--kind",
        choices=("deepmask", "sharpmask", "maskrcnn", "resnet"),
        help="for a model of your own (not in `models list`): what kind of model the file holds",
    )
    p.set_defaults(handler=lazy("scubasteve.inference.weights_cli:cmd_import"))

    p = verbs.add_parser("remove", help="delete an installed model")
    p.add_argument("name")
    p.set_defaults(handler=lazy("scubasteve.inference.weights_cli:cmd_remove"))

    p = verbs.add_parser("path", help="print the folder (or one model's file) where weights live")
    p.add_argument("name", nargs="?")
    p.set_defaults(handler=lazy("scubasteve.inference.weights_cli:cmd_path"))
