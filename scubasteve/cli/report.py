"""Printing batch reports: every problem on its own line (stderr), then a one-line summary."""

from __future__ import annotations

import sys

from scubasteve.io.dataset import Report


def print_report(report: Report, summary: str) -> None:
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(summary)
