"""The session summary: plain text off a terminal, a rich panel on one, and the at-exit hook."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap

import pytest
from view_helpers import Clock, call, info, limits, make_view, retry

from tokenrate.records import BudgetLine, TokenUsage
from tokenrate.view import Snapshot, render_summary
from tokenrate.view.summary import TITLE, _summary_at_exit


def session() -> Snapshot:
    clock = Clock()
    budgets = (BudgetLine("daily_usd", "day", "USD", 4.2, 10.0, "warning"),)
    view = make_view(clock, budget_provider=lambda: budgets)
    gpt = info("openai", "gpt-4o")
    claude = info("anthropic", "claude-sonnet-4")
    call(view, start_at=0, end=4, call_info=gpt, usage=TokenUsage(100, 40, cache_read=30, reasoning=10), cost=0.5)
    call(
        view,
        start_at=10,
        end=18,
        call_info=claude,
        usage=TokenUsage(50, 14, cache_write=20, tool_use=7),
        retries=(retry(claude, at=11, wait=6.25), retry(claude, at=17.5, status=None, reason="timeout", wait=0.5)),
        limits=limits("tokens", 1000, 120, 30.0),
    )
    call(view, start_at=20, end=21, call_info=gpt, status=500, error="InternalServerError")
    clock.t = 65.0
    return view.snapshot()


def plain(snap: Snapshot) -> str:
    out = io.StringIO()  # not a terminal
    render_summary(snap, file=out)
    return out.getvalue()


def labelled(text: str) -> dict[str, str]:
    """``label -> text`` for the summary lines (continuation lines are appended to their label)."""
    lines: dict[str, str] = {}
    last = ""
    for line in text.splitlines()[1:]:
        if not line.strip():
            break
        label, _, rest = line.strip().partition("  ")
        if line.startswith("   ") and not line.startswith("  " + label):
            lines[last] += " | " + line.strip()
            continue
        last = label
        lines[label] = rest.strip()
    return lines


def test_plain_summary_content():
    text = plain(session())
    assert text.startswith(TITLE + "\n")
    assert "\x1b" not in text
    lines = labelled(text)
    assert lines["duration"] == "1m05s (provider busy 13.0 s)"
    assert lines["requests"] == "3 (5 attempts)"
    # busy = [0, 4] + [10, 18] + [20, 21] = 13 s; 204 tokens in 65 s, or in 13 s of provider time
    assert lines["tokens"] == (
        "204 = input 150 + output 54 | cache_read 30 · cache_write 20 · reasoning 10 · tool_use 7"
    )
    # Window at t=65 is seconds 6..65. The average is the mean of the rolling TPM over the samples 0..65: the 140
    # tokens of second 4 are in 60 of them, the 64 of second 18 in 48 (18..65).
    assert lines["TPM"] == f"now 64 · peak 204 · average {round((140 * 60 + 64 * 48) / 66)}"
    assert lines["active TPM"] == "942 (tokens per minute of provider time)"
    assert lines["RPM"] == f"now 2 · peak 3 · average {(60 + 48 + 45) / 66:.1f}"  # calls at seconds 4, 18, 21
    assert lines["throttled"] == (
        "1× (429/529), 6.2 s with at least one call waiting | 6.2 s of waits, summed over concurrent calls"
    )
    assert lines["retries"] == "2 (throttled 1, timeout 1; 6.8 s of waits, summed)"
    assert lines["errors"] == "1 (InternalServerError 1)"
    assert lines["cost"] == "≥$0.50 (unknown for 1 call of a model without a price)"
    assert lines["rate limits"] == "anthropic tokens: 88% used (120 of 1,000 left)"  # refilled: no "resets in"
    assert lines["budgets"] == "daily_usd: $4.20 of $10.00 (42%) warning"

    table = text.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == [
        "model",
        "requests",
        "errors",
        "input",
        "output",
        "total",
        "peak",
        "TPM",
        "throttled",
        "cost",
    ]
    assert table[1].split() == ["openai/gpt-4o", "2", "1", "100", "40", "140", "140", "0", "$0.50"]
    assert table[2].split() == ["anthropic/claude-sonnet-4", "1", "0", "50", "14", "64", "64", "1×", "6.2", "s", "?"]


def test_plain_summary_of_a_session_without_calls():
    lines = labelled(plain(make_view(Clock()).snapshot()))
    assert lines["calls"] == "no LLM calls were recorded"
    assert lines["requests"] == "0 (0 attempts)"
    assert lines["tokens"].startswith("0 = input unknown + output unknown")  # no call said: unknown, not 0
    assert lines["cost"] == "$0.00"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_panel(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "160")
    out = FakeTerminal()
    render_summary(session(), file=out)
    text = out.getvalue()
    assert TITLE in text
    assert "╭" in text
    assert "╰" in text
    assert "anthropic/claude-sonnet-4" in text
    assert "1× 6.2 s" in text


@pytest.mark.tokenrate_errors_expected
def test_summary_at_exit_never_raises(monkeypatch: pytest.MonkeyPatch, swallowed_errors):
    class Broken:
        def isatty(self) -> bool:
            raise OSError("gone")

        def write(self, text: str) -> int:
            raise ValueError("I/O operation on closed file")

    monkeypatch.setattr(sys, "stderr", Broken())
    _summary_at_exit()  # must simply return
    monkeypatch.setattr(sys, "stderr", None)
    _summary_at_exit()
    assert swallowed_errors.places() == ["session summary at exit"]


def test_installed_summary_prints_once_at_exit():
    child = textwrap.dedent(
        """
        from tokenrate.pipeline import Pipeline
        from tokenrate.recording import ActiveCall
        from tokenrate.records import CallInfo, TokenUsage
        from tokenrate.view import install_summary_at_exit

        install_summary_at_exit()
        install_summary_at_exit()
        call = ActiveCall(Pipeline(None), CallInfo("openai", "chat", "gpt-4o-mini"))
        call.usage = TokenUsage(input=1234, output=56)
        call.finish()
        print("done")
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert proc.stderr.count(TITLE) == 1
    lines = labelled(proc.stderr[proc.stderr.index(TITLE) :])
    assert lines["requests"] == "1 (1 attempt)"
    assert lines["tokens"].startswith("1,290 = input 1,234 + output 56")


def test_token_types_no_call_reported_are_unknown_not_zero():
    clock = Clock()
    view = make_view(clock)
    gpt = info("openai", "gpt-4o")
    call(view, start_at=0, end=1, call_info=gpt, usage=TokenUsage(100, 40, cache_read=0))
    clock.t = 2.0
    snap = view.snapshot()
    assert snap.reported_token_types == ("input", "output", "cache_read")
    assert Snapshot.from_json(snap.to_json()) == snap
    tokens_line = next(line for line in plain(snap).splitlines() if "cache_read" in line)
    assert "cache_read 0" in tokens_line  # reported as 0: a real zero
    assert "cache_write unknown" in tokens_line
    assert "reasoning unknown" in tokens_line
    assert "tool_use unknown" in tokens_line


@pytest.mark.parametrize(("columns", "dropped"), [(160, ()), (100, ("errors", "peak TPM")), (80, ("input", "peak"))])
def test_narrow_terminals_drop_minor_columns_and_keep_model_names_whole(monkeypatch, columns, dropped):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = FakeTerminal()
    render_summary(session(), file=out)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # colours are not width
    header = next(line for line in text.splitlines() if "requests" in line and "cost" in line)
    for column in dropped:
        assert column not in header
    for column in ("model", "requests", "total", "throttled", "cost"):
        assert column in header
    assert "anthropic/claude-sonnet-4" in text  # never folded across lines
    assert max(len(line) for line in text.splitlines()) <= columns
