"""``tokenrate diagnostics``: SDK versions and support, hook points, exporter settings, conflicts."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnostics",
        help="show installed SDKs, whether tokenrate supports and hooks them, exporter settings, conflicts",
        description="Check this environment: installed SDK versions against tokenrate's supported ranges, which "
        "instrumentors would activate, whether every private hook point exists, the effective OTEL_* exporter "
        "settings (and whether each configured exporter is installed), and other GenAI instrumentations that "
        "would double-count. Exits 1 when something would not work.",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tokenrate.diagnostics import collect, exporter_problems, render

    report = collect()
    if args.format == "json":
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        render(report)
    problems = [
        sdk
        for sdk in report["sdks"]
        if sdk["installed"] and (not sdk.get("supported") or any(v != "ok" for v in sdk.get("hooks", {}).values()))
    ]
    return 1 if problems or exporter_problems(report) else 0
