"""`scubasteve models ...`: list, download, import, remove model weights.

The weights manager (`scubasteve.weights`) is imported inside the handlers, so
`scubasteve --help` does not load it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scubasteve import weights


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="manage model weights (offline import or download)")
    verbs = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = verbs.add_parser("list", help="known models, where they come from, and which are installed")
    p.add_argument(
        "-l", "--long", action="store_true", help="also show descriptions, addresses and checksums"
    )
    p.set_defaults(handler=cmd_list)

    p = verbs.add_parser("download", help="download a known model into the user cache")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="download again even if installed")
    p.set_defaults(handler=cmd_download)

    p = verbs.add_parser("import", help="install a weights file you already have (offline)")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.add_argument("--force", action="store_true", help="replace an installed file")
    p.add_argument(
        "--kind",
        choices=("deepmask", "sharpmask", "maskrcnn", "resnet", "isnet"),
        help="for a model of your own (not in `models list`): what kind of model the file holds",
    )
    p.set_defaults(handler=cmd_import)

    p = verbs.add_parser("remove", help="delete an installed model")
    p.add_argument("name")
    p.set_defaults(handler=cmd_remove)

    p = verbs.add_parser("path", help="print the folder (or one model's file) where weights live")
    p.add_argument("name", nargs="?")
    p.set_defaults(handler=cmd_path)


def _status_text(status: weights.ModelStatus) -> str:
    from scubasteve.weights.fetch import human_size

    if status.installed:
        return "installed"
    if status.problem:
        return "damaged"
    if status.partial_bytes:
        return f"partial ({human_size(status.partial_bytes)})"
    return "not installed"


def _size_text(info: weights.ModelInfo) -> str:
    from scubasteve.weights.fetch import human_size

    if info.size is not None:
        return human_size(info.size)
    if info.approx_size is not None:
        return f"~{human_size(info.approx_size)}"
    return "?"


def cmd_list(args: argparse.Namespace) -> int:
    from scubasteve import weights
    from scubasteve.core.paths import models_dir

    rows = [("NAME", "KIND", "SIZE", "STATUS", "LICENCE")]
    statuses = weights.list_models()
    for s in statuses:
        licence = "trained here" if s.trained else s.info.license
        rows.append((s.name, s.kind, _size_text(s.info), _status_text(s), licence))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        print("  ".join([*cells, row[-1]]))
    notes = [s for s in statuses if s.info.availability and not s.installed]
    if notes:
        print()
    for s in notes:
        print(f"Note: {s.name}: {s.info.availability}")
    if getattr(args, "long", False):
        for s in statuses:
            _print_details(s)
    print(f"\nModels folder: {models_dir()}")
    print("Get a model: scubasteve models download NAME")
    print("Offline:     scubasteve models import NAME FILE")
    return 0


def _print_details(s: weights.ModelStatus) -> None:
    from scubasteve.weights.store import read_sidecar

    info = s.info
    print(f"\n{info.name}: {info.description}")
    if info.url:
        print(f"  source:   {info.url}")
    for mirror in info.mirrors:
        print(f"  mirror:   {mirror}")
    if info.homepage:
        print(f"  project:  {info.homepage}")
    if info.availability:
        print(f"  note:     {info.availability}")
    print(f"  format:   {info.format}")
    print(f"  file:     {s.path}")
    print(f"  size:     {f'{info.size:,} bytes' if info.size else 'not published (not checked)'}")
    print(f"  sha256:   {info.sha256 or 'not published (not checked)'}")
    record = read_sidecar(info.name) or {}
    if s.installed and record.get("sha256"):
        print(f"  installed sha256: {record['sha256']}")
    if s.problem:
        print(f"  problem:  {s.problem}")
    if s.trained:
        meta: dict[str, Any] = s.meta
        for key in ("source_data", "metrics", "imported_from"):
            if key in meta:
                print(f"  {key}: {meta[key]}")


def cmd_download(args: argparse.Namespace) -> int:
    from scubasteve import weights
    from scubasteve.weights.store import read_sidecar

    name = args.name
    already = weights.installed_path(name)
    if already is not None and not args.force:
        print(f"{name} is already installed: {already} (add --force to download it again)")
        return 0
    from scubasteve.cli.progress import ProgressBar

    bar = ProgressBar(name)
    try:
        path = weights.download(name, progress=bar, force=args.force)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"scubasteve: download of {name} interrupted; the partial file was kept, "
            "run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    record = read_sidecar(name) or {}
    print(f"installed {name}: {path}")
    if record.get("sha256"):
        print(f"sha256 {record['sha256']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from scubasteve import weights

    path = weights.import_file(args.name, args.file, force=args.force, kind=args.kind)
    print(f"installed {args.name}: {path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from scubasteve import weights

    for path in weights.remove(args.name):
        print(f"deleted {path}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    from scubasteve import weights
    from scubasteve.core.paths import models_dir

    if not args.name:
        folder = models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        print(folder)
        return 0
    print(weights.resolve_weights(args.name))
    return 0
