"""Run the simulated provider in the foreground: ``python -m tokenrate.simulator --port 8765 --rpm 60``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._ratelimit import RateLimitModel
from tokenrate.simulator._server import SimulatedProvider


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The simulator's options, shared by ``python -m tokenrate.simulator`` and ``tokenrate simulate``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per model (enables limits)")
    parser.add_argument("--tpm", type=int, default=None, help="tokens per minute per model (enables limits)")
    parser.add_argument(
        "--overload-rate", type=float, default=0.0, help="probability of a 529 overload burst per request"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before the first byte of an answer")
    parser.add_argument("--tokens-per-second", type=float, default=None, help="generation speed (paces streams)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for overloads (reproducible)")
    parser.add_argument(
        "--usage",
        metavar="JSON",
        default=None,
        help='usage plan served on every answer, e.g. \'{"input": 120, "output": 30, "cache_read": 20}\'',
    )
    return parser


def rate_model_from(args: argparse.Namespace) -> RateLimitModel | None:
    """A rate-limit model when any limit, overload, latency or speed option was given; else ``None``."""
    wanted = (
        args.rpm is not None
        or args.tpm is not None
        or args.overload_rate > 0
        or args.latency > 0
        or args.tokens_per_second is not None
    )
    if not wanted:
        return None
    defaults = RateLimitModel()
    return RateLimitModel(
        rpm=args.rpm if args.rpm is not None else defaults.rpm,
        tpm=args.tpm if args.tpm is not None else defaults.tpm,
        overload_rate=args.overload_rate,
        latency_s=args.latency,
        tokens_per_second=args.tokens_per_second,
        seed=args.seed,
    )


def banner(sim: SimulatedProvider, model: RateLimitModel | None) -> str:
    base = sim.base_url
    if model is None:
        limits = "no rate limits enforced (generous limits reported in headers)"
    else:
        limits = f"{model.rpm} RPM, {model.tpm} TPM per model"
        if model.overload_rate:
            limits += f", overload rate {model.overload_rate:g}"
        if model.latency_s:
            limits += f", latency {model.latency_s:g} s"
        if model.tokens_per_second:
            limits += f", {model.tokens_per_second:g} tokens/s"
    return "\n".join(
        [
            "tokenrate SIMULATED LLM provider: not a real provider. No model is called and nothing is billed.",
            f"Listening on {base} ({limits}).",
            "",
            "Point the SDKs at it:",
            f"  export OPENAI_BASE_URL={sim.openai_base_url} OPENAI_API_KEY=sk-simulated",
            f"  export ANTHROPIC_BASE_URL={sim.anthropic_base_url} ANTHROPIC_API_KEY=simulated",
            f"  export GOOGLE_GEMINI_BASE_URL={sim.gemini_base_url} GEMINI_API_KEY=simulated",
            f"  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={sim.bedrock_endpoint_url}"
            " AWS_ACCESS_KEY_ID=simulated AWS_SECRET_ACCESS_KEY=simulated AWS_DEFAULT_REGION=us-east-1",
            "  or in code, for google-genai:",
            '    genai.Client(api_key="simulated",',
            f'                 http_options=types.HttpOptions(base_url="{sim.gemini_base_url}"))',
            "",
            f"Control: GET {base}/_sim/health | GET /_sim/served | POST /_sim/script | POST /_sim/reset"
            " | POST /_sim/usage",
            "Stop with Ctrl-C.",
        ]
    )


def serve(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run until Ctrl-C, SIGTERM or ``stop`` is set; ``ready`` (if given) is set once the server listens."""
    out = out or sys.stdout
    try:
        plan = UsagePlan.from_dict(json.loads(args.usage)) if args.usage else None
        model = rate_model_from(args)
    except ValueError as exc:
        print(f"tokenrate simulate: {exc}", file=sys.stderr)
        return 2
    stop = stop or threading.Event()
    sim = SimulatedProvider(host=args.host, port=args.port, rate_limits=model, usage=plan)
    try:
        sim.start()
    except OSError as exc:
        print(f"tokenrate simulate: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    try:
        if in_main:  # before the banner: whoever reads it may send SIGTERM at once
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(banner(sim, model), file=out, flush=True)
        if ready is not None:
            ready.set()
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main and previous is not None:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signal.SIGTERM, previous)
        sim.stop()
        print("tokenrate simulated provider stopped.", file=out, flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(
            prog="python -m tokenrate.simulator",
            description="Run a SIMULATED LLM provider (OpenAI, Anthropic, Gemini, Bedrock protocols) on 127.0.0.1.",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    return serve(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
