"""tokenrate's status line as the footer of your own CLI, kept up to date while an agent works.

    python examples/status_line.py

``tokenrate.view.format_status(snapshot, width)`` renders one plain line (no colours), dropping the less
important parts when ``width`` is small; ``tokenrate.snapshot()`` is cheap enough to call a few times a second.
On a terminal the footer is redrawn in place under the agent's log lines; otherwise one status line is printed
per second. The "agent" is a loop of streamed calls to the local *simulated* provider (no model is called),
which sends a 429 now and then.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading

import openai

import tokenrate
from tokenrate.simulator import RateLimitModel, SimulatedProvider, Step, UsagePlan
from tokenrate.view import format_status


class Footer:
    """A one-line footer under the program's own output (redrawn in place on a terminal)."""

    def __init__(self, out=sys.stdout) -> None:
        self.out = out
        self.live = out.isatty()
        self.lock = threading.Lock()

    def _line(self) -> str:
        width = shutil.get_terminal_size().columns - 1
        return format_status(tokenrate.snapshot(), width=width)

    def log(self, message: str) -> None:
        """Print a line of the program's output above the footer."""
        with self.lock:
            if self.live:
                self.out.write("\r\x1b[2K" + message + "\n" + self._line())
            else:
                self.out.write(message + "\n")
            self.out.flush()

    def refresh(self) -> None:
        with self.lock:
            self.out.write("\r\x1b[2K" + self._line() if self.live else "status: " + self._line() + "\n")
            self.out.flush()

    def close(self) -> None:
        with self.lock:
            self.out.write("\r\x1b[2K" if self.live else "")
            self.out.flush()


def agent(sim: SimulatedProvider, steps: int, footer: Footer) -> None:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-simulated")
    for step in range(1, steps + 1):
        if step % 3 == 0:
            sim.script(Step.rate_limited(retry_after=0.5, match="openai"))
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"step {step}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = sum(1 for _ in stream)
        footer.log(f"agent: step {step}/{steps} done ({chunks} chunks)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="how many calls the agent makes (default 12)")
    args = parser.parse_args()

    tokenrate.instrument(["openai"])  # the local view needs no OTel SDK: metrics are no-ops without one
    footer = Footer()
    model = RateLimitModel(latency_s=0.2, tokens_per_second=800)  # slow enough to watch
    with SimulatedProvider(rate_limits=model, usage=UsagePlan(input=900, output=240, cache_read=300)) as sim:
        worker = threading.Thread(target=agent, args=(sim, args.steps, footer), name="agent")
        worker.start()
        while worker.is_alive():
            worker.join(timeout=0.25 if footer.live else 1.0)
            footer.refresh()
    footer.close()
    print("final:", format_status(tokenrate.snapshot()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
