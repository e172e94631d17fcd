"""``tokenrate simulate``: run the simulated LLM provider (OpenAI, Anthropic, Gemini, Bedrock) locally."""

from __future__ import annotations

import argparse
from typing import Any

from tokenrate.simulator.__main__ import add_arguments, serve


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a SIMULATED LLM provider on 127.0.0.1 (for trying tokenrate without a real provider)",
        description="Run a SIMULATED LLM provider speaking the OpenAI, Anthropic, Gemini and Bedrock wire protocols, "
        "with scripted throttling and provider-style rate-limit headers. No model is called.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return serve(args)
