"""reprlab report: build reports/index.html (and report.md) from the studies' results.json files."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="build the HTML report from results.json files",
        epilog="example: reprlab report --in reports   (then open reports/index.html)",
    )
    p.add_argument("--in", dest="folder", default="reports", help="folder holding one sub-folder per study")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report.html import build_report

    html, md = build_report(Path(args.folder))
    print(f"wrote {html} and {md}")
    return 0
