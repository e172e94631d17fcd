"""``tokenrate demo``: every supported SDK against the simulated provider, throttled, with the live view."""

from __future__ import annotations

import argparse

from tokenrate.cli._args import number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="watch tokenrate on a throttled workload through openai, anthropic, google-genai and boto3 (simulated)",
        description="Start the simulated provider with small per-model rate limits, drive a concurrent workload "
        "through the real openai, anthropic, google-genai and boto3 (Bedrock) SDKs with tokenrate on, show the live "
        "view, then the session summary. Set OTEL_EXPORTER_OTLP_ENDPOINT to also export OTLP/HTTP there. Ctrl-C "
        "stops it at once and prints the summary (exit 130); a second Ctrl-C quits immediately.",
    )
    parser.add_argument(
        "--duration",
        type=number(1, 86_400),
        default=30.0,
        metavar="SECONDS",
        help="how long the workload runs (default 30); new calls stop in the last few seconds so calls in flight "
        "can finish, and calls still sleeping out a Retry-After then are reported as in flight, not waited for",
    )
    parser.add_argument(
        "--workers", type=number(1, 64, integer=True), default=2, help="concurrent workers per SDK (default 2)"
    )
    parser.add_argument(
        "--rpm",
        type=number(1, 1e9, integer=True),
        default=24,
        help="simulated requests per minute per model (default 24)",
    )
    parser.add_argument(
        "--tpm",
        type=number(1, 1e12, integer=True),
        default=12_000,
        help="simulated tokens per minute per model (default 12000)",
    )
    parser.add_argument(
        "--overload-rate", type=number(0, 1), default=0.03, help="chance of a 529 burst, 0 to 1 (default 0.03)"
    )
    display = parser.add_mutually_exclusive_group()
    display.add_argument("--live", dest="live", action="store_true", default=None, help="force the live display")
    display.add_argument("--plain", dest="live", action="store_false", help="periodic plain lines instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tokenrate.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=args.duration,
        workers_per_sdk=max(1, args.workers),
        rpm=args.rpm,
        tpm=args.tpm,
        overload_rate=args.overload_rate,
        live=args.live,
    )
    return run_demo(options)
