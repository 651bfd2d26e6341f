"""The one entry point: `scubasteve` opens the window, subcommands run the same engines headless.

Only argparse and the subcommand modules load here, so `scubasteve --help` stays fast: each
`cli/<command>.py` registers its options and holds its handlers, which import what they need
(PyTorch, TensorFlow, the engines, the benchmarks) inside their bodies, when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from scubasteve import __version__

#: Subcommand modules under scubasteve.cli; each defines `register(subparsers)`.
COMMAND_MODULES = (
    "convert", "validate", "bench", "models", "train", "annotate", "segment", "eval",
)  # fmt: skip

#: Exit statuses, so that scripts can tell "some items failed" from a crash (README, --help).
EXIT_OK = 0
EXIT_SOME_FAILED = 1  # each failed item was named on stderr; the rest was done
EXIT_INPUT_ERROR = 2  # the command could not run: a bad argument or input file (argparse too)
EXIT_INTERNAL_ERROR = 70  # an unexpected error: a bug in Scuba Steve (sysexits' EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl+C

EXIT_STATUS_HELP = """exit status:
  0    everything was done
  1    some items (files, images, shapes, objects) failed; each is named on stderr,
       the rest was done
  2    the command could not run: a bad argument or input file (the message names it)
  70   an unexpected error, a bug in Scuba Steve: the message names it (-v shows where)
  130  interrupted (Ctrl+C)"""

log = logging.getLogger("scubasteve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scubasteve",
        description=(
            "Scuba Steve annotates objects with masks: drag a box, pick one of ten proposals. "
            "Without a subcommand it opens the desktop window."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scubasteve {__version__}")
    parser.add_argument("--open", metavar="FOLDER", type=Path, help="open this image folder")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that the installation works (window, engines, file writing) and exit",
    )
    # The child process of the self-test's display check: open a window on the display, exit 0.
    parser.add_argument("--check-display", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"scubasteve.cli.{name}")
        module.register(sub)
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    # `scubasteve ~/photos` opens that folder, as desktop users expect.
    first = argv[0] if argv else ""
    is_folder = bool(first) and not first.startswith("-") and first not in COMMAND_MODULES
    if is_folder and Path(first).expanduser().is_dir():
        return ["--open", first, *argv[1:]]
    return argv


def _check_paths(args: argparse.Namespace) -> None:
    """Every path given on the command line, checked before any command uses it: a name no file
    system holds (too long, a NUL, not valid Unicode) is an `InputError` naming it."""
    from scubasteve.core.errors import InputError
    from scubasteve.core.files import name_problem

    for option, value in vars(args).items():
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, Path):
                problem = name_problem(path)
                if problem:
                    raise InputError(f"{option.replace('_', '-')}: {problem}", path)


def _tolerant_output() -> None:
    # A path from the command line or the disk may hold bytes that are not UTF-8 (Python keeps
    # them as surrogates); printing one must not crash the command after its work is done.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # TensorFlow's C++ logging (oneDNN notices, cuInit failures on CPU-only machines) goes straight
    # to stderr; it must be configured before TensorFlow loads. -v shows it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if args.verbose else "3")
    # OpenMP threads that spin while they wait took the CPU from the window and the classic engine
    # and slowed PyTorch's own passes up to 8x when the cores were busy (docs/proposals.md): they
    # sleep instead. Read when PyTorch loads, which is after this.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from scubasteve.core.errors import ScubaSteveError

    try:
        _check_paths(args)
        if args.check_display:
            from scubasteve.gui.app import check_display

            return check_display()
        if args.self_test:
            from scubasteve.selftest import run_self_test

            return run_self_test()
        if args.command is None:
            from scubasteve.gui.app import run_app

            return run_app(folder=args.open, exit_at_once=True)
        return int(args.handler(args) or 0)
    except ScubaSteveError as exc:
        print(f"scubasteve: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("scubasteve: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("scubasteve: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    except Exception as exc:  # the last line of defence: a message and a distinct status
        if args.verbose:
            traceback.print_exc()
        where = "" if args.verbose else " (run again with -v to see where)"
        print(
            f"scubasteve: internal error: {type(exc).__name__}: {exc}\n"
            f"This is a bug in Scuba Steve, not a problem with your data{where}; please report "
            "it with the command that caused it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR
