"""The ``tokenrate`` command line. Each sub-command lives in its own module ``tokenrate.cli.<name>``.

A command module provides ``register(subparsers)``, which adds its parser and sets ``func`` (taking the parsed
arguments, returning the exit code) as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tokenrate import __version__

COMMANDS: tuple[str, ...] = ("run", "top", "report", "diagnostics", "simulate", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenrate",
        description="See what your LLM calls cost in tokens, time lost to throttling, and money.",
    )
    parser.add_argument("--version", action="version", version=f"tokenrate {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tokenrate.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tokenrate.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    return int(func(args) or 0)
