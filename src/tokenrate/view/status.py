"""`format_status`: one plain line for a CLI footer, e.g.

``TPM 2,450 · RPM 12 · 125.4k tok (in 80.1k / out 45.3k) · $0.42 · throttled 3× 6.2 s · limit 88% used``
"""

from __future__ import annotations

from tokenrate.view._format import (
    TIMES,
    fmt_budget_short,
    fmt_cost,
    fmt_int,
    fmt_pct,
    fmt_seconds,
    fmt_tokens,
    worst_first,
)
from tokenrate.view.snapshot import Snapshot

SEPARATOR = " · "

# Segments, in display order, with the order in which they are dropped when the line is too wide
# (lower drops first). TPM is never dropped.
_DROP_ORDER = ("breakdown", "errors", "rpm", "limit", "tokens", "throttle", "cost", "budget")


def _segments(snap: Snapshot) -> list[tuple[str, str]]:
    segments: list[tuple[str, str]] = [
        ("tpm", f"TPM {fmt_int(snap.rates.tpm)}"),
        ("rpm", f"RPM {fmt_int(snap.rates.rpm)}"),
    ]
    tokens = snap.tokens
    if snap.unknown_usage_calls and not tokens.total:
        segments.append(("tokens", "? tok"))
    else:
        lower_bound = "≥" if snap.unknown_usage_calls else ""  # some calls' tokens are missing
        segments.append(("tokens", f"{lower_bound}{fmt_tokens(tokens.total)} tok"))
    if tokens.total:
        known = (("in", tokens.input), ("out", tokens.output))
        parts = (f"{label} {'?' if n is None else fmt_tokens(n)}" for label, n in known)
        segments.append(("breakdown", f"({' / '.join(parts)})"))
    cost = fmt_cost(snap.cost_usd, snap.unknown_cost_calls)
    segments.append(("cost", "cost ?" if cost == "?" else cost))
    throttle = snap.throttle
    if throttle.events:
        text = f"throttled {throttle.events}{TIMES}"
        if throttle.wall_s > 0:  # wall-clock time with a call waiting, not waits summed over concurrent calls
            text += f" {fmt_seconds(throttle.wall_s)}"
        segments.append(("throttle", text))
    if snap.errors:
        segments.append(("errors", f"{snap.errors} error{'s' if snap.errors != 1 else ''}"))
    used = snap.limit_used_max
    if used is not None:
        segments.append(("limit", f"limit {fmt_pct(used)} used"))
    if snap.budgets:
        segments.append(("budget", "budget " + ", ".join(fmt_budget_short(b) for b in worst_first(snap.budgets))))
    return segments


def _join(segments: list[tuple[str, str]]) -> str:
    out = ""
    for name, text in segments:
        if not out:
            out = text
        elif name == "breakdown":
            out += " " + text  # belongs to the token count before it
        else:
            out += SEPARATOR + text
    return out


def format_status(snapshot: Snapshot, width: int | None = None) -> str:
    """One line, no colour codes. With ``width``, less important parts are dropped until it fits."""
    segments = _segments(snapshot)
    line = _join(segments)
    if width is None or len(line) <= width:
        return line
    for name in _DROP_ORDER:
        segments = [s for s in segments if s[0] != name]
        line = _join(segments)
        if len(line) <= width:
            return line
    if width <= 1:
        return line[: max(0, width)]
    return line[: width - 1] + "…"
