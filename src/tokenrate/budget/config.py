"""Budgets from the configuration: ``TOKENRATE_BUDGET_*`` (the global budgets) and the budgets file.

The budgets file (``TOKENRATE_BUDGETS=path``, TOML) holds any number of ``[[budget]]`` tables::

    [[budget]]                      # every user: $5 a day, hard stop
    name = "per-user"               # optional; shown in the status line, summary, top, report, errors
    scope = { "user.id" = "*" }     # optional (default: every call); attribute keys, provider, model
    period = "day"                  # day, week, month, or a rolling window: 1h, 30m, 7d
    limit_usd = 5                   # limit_usd and/or limit_tokens
    thresholds = [75, 90, 100]      # optional (default TOKENRATE_BUDGET_THRESHOLDS)
    enforce = true                  # optional (default TOKENRATE_BUDGET_ENFORCE)

A file with a mistake raises `BudgetFileError` naming the file and the line; the caller logs it once and runs
without the file's budgets (calls are never affected).
"""

from __future__ import annotations

import math
import re
from datetime import tzinfo
from pathlib import Path
from typing import Any

from tokenrate._env import setting
from tokenrate._toml import toml_module
from tokenrate.budget.period import DAY, MONTH
from tokenrate.budget.scope import Scope
from tokenrate.budget.spec import TOKENS, USD, BudgetSpec, normalize_thresholds
from tokenrate.errors import TokenrateError

ENV_LIMITS: dict[str, tuple[str, str]] = {
    "TOKENRATE_BUDGET_DAILY_USD": (DAY, USD),
    "TOKENRATE_BUDGET_MONTHLY_USD": (MONTH, USD),
    "TOKENRATE_BUDGET_DAILY_TOKENS": (DAY, TOKENS),
    "TOKENRATE_BUDGET_MONTHLY_TOKENS": (MONTH, TOKENS),
}
ENV_THRESHOLDS = "TOKENRATE_BUDGET_THRESHOLDS"
ENV_TZ = "TOKENRATE_BUDGET_TZ"
ENV_ENFORCE = "TOKENRATE_BUDGET_ENFORCE"
ENV_FILE = "TOKENRATE_BUDGETS"

_KEYS = frozenset({"name", "scope", "period", "limit_usd", "limit_tokens", "thresholds", "enforce"})
_HEADER = re.compile(r"^\s*\[\[\s*budget\s*\]\]")


class BudgetFileError(TokenrateError):
    """The budgets file cannot be used; the message names the file and the line."""


def budget_specs_from_env() -> list[BudgetSpec]:
    specs = []
    for name, (period, unit) in ENV_LIMITS.items():
        limit = setting(name)  # a positive, finite number, or None (unset or invalid: that budget is off)
        if limit is not None:
            specs.append(BudgetSpec(period, unit, limit))
    return specs


def thresholds_from_env() -> tuple[float, ...]:
    return normalize_thresholds(setting(ENV_THRESHOLDS))


def budget_tz_from_env() -> tzinfo | None:
    """The ``TOKENRATE_BUDGET_TZ`` zone, or None (local time) when unset or unknown."""
    return setting(ENV_TZ)


def budget_file_from_env() -> Path | None:
    return setting(ENV_FILE)


def load_budgets_file(path: str | Path) -> list[BudgetSpec]:
    """Every budget in the file (one spec per limit); `BudgetFileError` naming the line when one is wrong."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetFileError(f"budgets file {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from exc
    return parse_budgets(text, source=str(path))


def parse_budgets(text: str, *, source: str = "<text>") -> list[BudgetSpec]:
    toml = toml_module()
    if toml is None:
        raise BudgetFileError(f"budgets file {source!r} is TOML, which needs Python >= 3.11 or the 'tomli' package")
    try:
        document = toml.loads(text)
    except toml.TOMLDecodeError as exc:  # its message names the line and column
        raise BudgetFileError(f"budgets file {source!r} is not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - {"budget"})
    if unknown:
        raise BudgetFileError(
            f"budgets file {source!r}, line {_line(text, key=unknown[0])}: unknown key {unknown[0]!r}"
        )
    tables = document.get("budget", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise BudgetFileError(f"budgets file {source!r}: budgets are [[budget]] tables")
    specs: list[BudgetSpec] = []
    names: set[str] = set()
    for index, table in enumerate(tables):
        try:
            found = _budget(table)
        except _FieldError as exc:
            line = _line(text, index=index, key=exc.key)
            raise BudgetFileError(f"budgets file {source!r}, line {line}: {exc.problem}") from None
        name = found[0].name
        if name in names:
            line = _line(text, index=index, key="name")
            raise BudgetFileError(f"budgets file {source!r}, line {line}: a second budget is named {name!r}")
        names.add(name)  # type: ignore[arg-type]
        specs.extend(found)
    return specs


class _FieldError(Exception):
    def __init__(self, key: str | None, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _budget(table: dict[str, Any]) -> list[BudgetSpec]:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise _FieldError(unknown[0], f"unknown key {unknown[0]!r} (expected {', '.join(sorted(_KEYS))})")
    try:
        scope = Scope.parse(table.get("scope"))
    except ValueError as exc:
        raise _FieldError("scope", str(exc)) from None
    if "period" not in table:
        raise _FieldError(None, "a budget needs a period (day, week, month or a rolling window such as 1h)")
    limits = {unit: table[key] for key, unit in (("limit_usd", USD), ("limit_tokens", TOKENS)) if key in table}
    if not limits:
        raise _FieldError(None, "a budget needs limit_usd and/or limit_tokens")
    for unit, value in limits.items():
        key = "limit_usd" if unit == USD else "limit_tokens"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise _FieldError(key, f"{key} must be a number above 0, not {value!r}")
    thresholds = table.get("thresholds")
    if thresholds is not None and (
        not isinstance(thresholds, list)
        or not thresholds
        or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= 1000 for t in thresholds)
    ):
        raise _FieldError("thresholds", "thresholds must be a list of percents above 0, e.g. [75, 90, 100]")
    enforce = table.get("enforce")
    if enforce is not None and not isinstance(enforce, bool):
        raise _FieldError("enforce", f"enforce must be true or false, not {enforce!r}")
    name = table.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise _FieldError("name", f"name must be a non-empty string, not {name!r}")
    try:
        return [
            BudgetSpec(
                table["period"],
                unit,
                float(limit),
                name=name.strip() if name else None,
                scope=scope,
                thresholds=tuple(float(t) for t in thresholds) if thresholds else None,
                enforce=enforce,
            )
            for unit, limit in limits.items()
        ]
    except ValueError as exc:
        raise _FieldError("period", str(exc)) from None


def _line(text: str, *, index: int | None = None, key: str | None = None) -> int:
    """The line of budget ``index`` (its key ``key`` when found in it), 1-based; top-level keys without index."""
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    if index is None:
        start, end = 0, headers[0] if headers else len(lines)
    elif index < len(headers):
        start = headers[index]
        end = headers[index + 1] if index + 1 < len(headers) else len(lines)
    else:
        return 1
    if key is not None:
        pattern = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
        for i in range(start, end):
            if pattern.match(lines[i]):
                return i + 1
    return start + 1
