"""Number formatting shared by the status line, the session summary and ``tokenrate top``."""

from __future__ import annotations

import math

from tokenrate.records import BudgetLine

TIMES = "\u00d7"
"""The multiplication sign of ``throttled 3\u00d7``."""


def fmt_int(n: float) -> str:
    """``2,450``."""
    return f"{round(n):,}"


def fmt_tokens(n: float) -> str:
    """Compact token counts: ``950``, ``125.4k``, ``3.2M``, ``1.1B``."""
    n = round(n)
    if abs(n) < 1000:
        return str(n)
    for scale, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
        value = round(n / scale, 1)
        if abs(value) < 1000 or suffix == "B":
            return f"{value:.1f}{suffix}"
    raise AssertionError("unreachable")


def fmt_usd(x: float) -> str:
    """``$0.42``, ``$1,234.50``; sub-cent amounts keep two significant digits (``$0.0031``, ``$0.000040``), so a
    known non-zero cost never reads as ``$0.00``."""
    if x == 0:
        return "$0.00"
    if abs(x) < 0.01:
        decimals = 1 - math.floor(math.log10(abs(x)))
        return f"${x:.{decimals}f}"
    return f"${x:,.2f}"


def fmt_seconds(s: float) -> str:
    """``6.2 s``, ``4m05s``, ``1h02m``."""
    if s < 60:
        return f"{s:.1f} s"
    total = round(s)
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{(total % 3600) // 60:02d}m"


def fmt_pct(fraction: float) -> str:
    return f"{round(fraction * 100)}%"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else fmt_int(value)


def fmt_cost(cost: float, unknown_calls: int) -> str:
    """Cost with its certainty: ``$0.42``; ``≥$0.42`` when some calls have no price; ``?`` when none has."""
    if unknown_calls and cost == 0:
        return "?"
    if unknown_calls:
        return "≥" + fmt_usd(cost)
    return fmt_usd(cost)


_STATE_RANK = {"exceeded": 3, "alert": 2, "warning": 1, "ok": 0}


def budget_rank(line: BudgetLine) -> int:
    return _STATE_RANK.get(line.state, 0)


def fmt_budget_amount(line: BudgetLine, value: float) -> str:
    return fmt_usd(value) if line.unit.upper() == "USD" else fmt_tokens(value) + " tok"


def fmt_budget_short(line: BudgetLine) -> str:
    """``daily_usd 42%``, ``monthly_tokens 91% warning``, ``per-user[user.id=alice] 100% exceeded``."""
    name = f"{line.name}[{line.scope}]" if line.scope else line.name
    text = f"{name} {fmt_pct(line.utilization)}"
    if line.state != "ok":
        text += f" {line.state}"
    return text


def worst_first(budgets: tuple[BudgetLine, ...]) -> list[BudgetLine]:
    return sorted(budgets, key=lambda b: (-budget_rank(b), -b.utilization, b.name, b.scope))
