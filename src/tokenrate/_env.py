"""Every ``TOKENRATE_*`` environment variable, declared once, and the typed readers that parse them.

One rule for all of them: unset or empty means the default; a value the variable does not accept gives exactly
one WARNING naming the variable, the bad value, what it accepts and the default used — never an exception, so a
typo in the environment cannot break the user's program. Numbers are finite and inside a declared range (an
interval of ``inf`` seconds or a budget of ``1e400`` dollars is a typo, not a setting).

`SETTINGS` is the table the README's "Configuration" section shows (a test keeps the two equal). Read a value
with `setting(name)`; `env_bool`/`env_float`/`env_str` remain for code that reads a variable not declared yet.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from tokenrate._safety import warn_once

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_OFF = frozenset({"0", "false", "no", "off"})

INTERVAL_MIN_S = 0.1
"""Shortest refresh interval of a background thread (publishing, ``tokenrate run`` reporting)."""
INTERVAL_MAX_S = 3600.0
"""Longest one: an hour. Longer waits overflow the thread's timer on some platforms and show nothing useful."""
BUDGET_MAX = 1e15
"""Largest budget accepted (USD or tokens): anything larger is a typo for "no budget"."""


@dataclass(frozen=True)
class Setting:
    """One ``TOKENRATE_*`` variable: its default, what it accepts, and what it does."""

    name: str
    default: Any
    default_text: str
    """The default as the README shows it."""
    accepted: str
    """What the variable accepts, as the warning and the README say it."""
    effect: str
    parse: Callable[[str], Any]
    """Turns the (stripped, non-empty) text into the value; raises ValueError when it is not accepted."""
    public: bool = True
    """False for variables tokenrate sets for itself (``tokenrate run``'s child processes)."""


def parse_flag(raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(raw)


def number_parser(minimum: float, maximum: float, *, above_minimum: bool = False) -> Callable[[str], float]:
    """A parser for a finite number in ``[minimum, maximum]`` (``(minimum, maximum]`` with ``above_minimum``)."""

    def parse(raw: str) -> float:
        value = float(raw)  # ValueError for text; "inf", "nan" and 1e400 parse, and are refused below
        if not math.isfinite(value) or value > maximum or value < minimum or (above_minimum and value == minimum):
            raise ValueError(raw)
        return value

    return parse


def choice_parser(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise ValueError(raw)
        return value

    return parse


def _text(raw: str) -> str:
    return raw


def integer_parser(minimum: int, maximum: int) -> Callable[[str], int]:
    """A parser for a whole number in ``[minimum, maximum]``."""

    def parse(raw: str) -> int:
        value = int(raw)
        if not minimum <= value <= maximum:
            raise ValueError(raw)
        return value

    return parse


def _names(raw: str) -> tuple[str, ...]:
    """``user.id, tenant.id``: the non-empty names, stripped, in order, each once."""
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not names or any(len(name) > 128 or any(c.isspace() for c in name) for name in names):
        raise ValueError(raw)
    return names


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _ledger(raw: str) -> Path | None:
    return None if raw.lower() in _OFF else Path(raw).expanduser()


def _percents(raw: str) -> tuple[float, ...]:
    parse = number_parser(0.0, 1000.0, above_minimum=True)
    values = tuple(parse(part.strip().rstrip("%")) for part in raw.split(",") if part.strip())
    if not values:
        raise ValueError(raw)
    return values


def _time_zone(raw: str) -> tzinfo | None:
    if raw.lower() == "local":
        return None
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(raw)
    except Exception as exc:  # ZoneInfoNotFoundError, or a malformed key (ValueError)
        raise ValueError(raw) from exc


_FLAG = "true/false (also 1/0, yes/no, on/off)"
_SECONDS = f"a number of seconds from {INTERVAL_MIN_S:g} to {INTERVAL_MAX_S:g}"
_BUDGET_AMOUNT = "a number above 0, at most 1e15"


def _budget(name: str, period: str, unit: str) -> Setting:
    what = "US dollars" if unit == "USD" else "billed tokens (input + output)"
    return Setting(
        name=name,
        default=None,
        default_text="off",
        accepted=_BUDGET_AMOUNT,
        effect=f"{period} budget in {what}",
        parse=number_parser(0.0, BUDGET_MAX, above_minimum=True),
    )


_DECLARED = (
    Setting(
        "TOKENRATE_OPENAI_INJECT_STREAM_USAGE",
        True,
        "true",
        _FLAG,
        "ask for usage in OpenAI chat streams that did not (the extra chunk is hidden)",
        parse_flag,
    ),
    Setting(
        "TOKENRATE_ANTHROPIC_SPANS",
        "tokenrate",
        "tokenrate",
        "tokenrate or native",
        "`native`: keep the anthropic SDK's own span instead of tokenrate's",
        choice_parser("tokenrate", "native"),
    ),
    Setting("TOKENRATE_SUMMARY", False, "false", _FLAG, "print the session summary at exit", parse_flag),
    Setting(
        "TOKENRATE_SUMMARY_BY",
        (),
        "none",
        "comma-separated attribute keys (e.g. user.id)",
        "the session summary adds a table of totals per value of each",
        _names,
    ),
    Setting("TOKENRATE_PUBLISH", False, "false", _FLAG, "publish the view for `tokenrate top`", parse_flag),
    Setting(
        "TOKENRATE_PUBLISH_INTERVAL",
        1.0,
        "1",
        _SECONDS,
        "seconds between two publications",
        number_parser(INTERVAL_MIN_S, INTERVAL_MAX_S),
    ),
    Setting(
        "TOKENRATE_STATE_DIR",
        None,
        "`$XDG_RUNTIME_DIR/tokenrate` or a per-user temp dir",
        "a directory",
        "where published views live",
        _path,
    ),
    Setting("TOKENRATE_PRICES", None, "none", "a TOML or JSON file", "your price file (docs/cost.md)", _path),
    Setting(
        "TOKENRATE_PRICES_AUTO_UPDATE",
        False,
        "false",
        _FLAG,
        "let genai-prices refresh prices from the network",
        parse_flag,
    ),
    _budget("TOKENRATE_BUDGET_DAILY_USD", "daily", "USD"),
    _budget("TOKENRATE_BUDGET_MONTHLY_USD", "monthly", "USD"),
    _budget("TOKENRATE_BUDGET_DAILY_TOKENS", "daily", "tokens"),
    _budget("TOKENRATE_BUDGET_MONTHLY_TOKENS", "monthly", "tokens"),
    Setting(
        "TOKENRATE_BUDGET_THRESHOLDS",
        (75.0, 90.0, 100.0),
        "75,90,100",
        "comma-separated percents above 0, at most 1000",
        "budget warning thresholds (100 is always added)",
        _percents,
    ),
    Setting(
        "TOKENRATE_BUDGET_TZ",
        None,
        "local",
        "an IANA time zone (e.g. Europe/Paris) or local",
        "the time zone of budget days and months",
        _time_zone,
    ),
    Setting(
        "TOKENRATE_BUDGET_ENFORCE",
        False,
        "false",
        _FLAG,
        "refuse calls (`BudgetExceededError`) while a budget is exceeded",
        parse_flag,
    ),
    Setting(
        "TOKENRATE_BUDGETS",
        None,
        "none",
        "a TOML file of [[budget]] tables",
        "budgets per scope (user, feature, provider, model), period and limit; see the README",
        _path,
    ),
    Setting(
        "TOKENRATE_BUDGET_STORE",
        None,
        "none (the ledger, else this process)",
        "a redis://, rediss://, valkey:// or valkeys:// URL",
        "share budgets across machines through Redis or Valkey (its password is never logged)",
        _text,
    ),
    Setting(
        "TOKENRATE_BUDGET_STALENESS",
        1.0,
        "1",
        "a number of seconds from 0 to 60",
        "how old another process's spend may be when a call is checked against a shared budget",
        number_parser(0.0, 60.0),
    ),
    Setting(
        "TOKENRATE_BUDGET_STORE_TIMEOUT",
        0.1,
        "0.1",
        "a number of seconds from 0.005 to 5",
        "longest wait for the budget store; slower or unreachable: local accounting",
        number_parser(0.005, 5.0),
    ),
    Setting(
        "TOKENRATE_LEDGER",
        None,
        "off (on under `tokenrate run`)",
        "a file path, or off",
        "the SQLite usage ledger",
        _ledger,
    ),
    Setting(
        "TOKENRATE_BAGGAGE_KEYS",
        (),
        "none",
        "comma-separated attribute keys (e.g. user.id,tenant.id)",
        "OTel Baggage entries copied onto calls as attributes",
        _names,
    ),
    Setting(
        "TOKENRATE_METRIC_ATTRIBUTES",
        (),
        "none",
        "comma-separated attribute keys (e.g. user.id,tokenrate.feature)",
        "call attributes that metrics carry (each value is a time series)",
        _names,
    ),
    Setting(
        "TOKENRATE_METRIC_ATTRIBUTE_LIMIT",
        100,
        "100",
        "a whole number from 1 to 100000",
        "distinct values per metric attribute key; later ones are recorded as `_other`",
        integer_parser(1, 100_000),
    ),
    Setting(
        "TOKENRATE_RUN_DIR",
        None,
        "none",
        "a directory",
        "set by `tokenrate run` for its program: where each process reports its view",
        _path,
        public=False,
    ),
    Setting(
        "TOKENRATE_RUN_INTERVAL",
        1.0,
        "1",
        _SECONDS,
        "set by `tokenrate run` (`--interval`): seconds between two reports",
        number_parser(INTERVAL_MIN_S, INTERVAL_MAX_S),
        public=False,
    ),
)

SETTINGS: dict[str, Setting] = {s.name: s for s in _DECLARED}
"""Every ``TOKENRATE_*`` variable tokenrate reads, by name."""


def setting(name: str) -> Any:
    """The value of a declared variable: parsed, range-checked, or its default (with one WARNING if invalid)."""
    declared = SETTINGS[name]
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return declared.default
    text = raw.strip()
    try:
        return declared.parse(text)
    except (ValueError, OverflowError):
        _warn_invalid(name, raw, declared.accepted, declared.default_text)
        return declared.default


def _warn_invalid(name: str, raw: str, accepted: str, default: str) -> None:
    warn_once(
        f"env:{name}={raw}",
        "tokenrate: %s=%r is not valid (expected %s); using the default: %s",
        name,
        raw,
        accepted,
        default,
    )


def bounded_interval(value: float, default: float = 1.0) -> float:
    """A background thread's interval from an API argument: a non-number uses ``default``, others are clamped."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(seconds):
        return default
    return min(INTERVAL_MAX_S, max(INTERVAL_MIN_S, seconds))


# -- readers for variables not declared above (kept for code written before the table) ------------------------


def _undeclared(name: str, default: Any, accepted: str, parse: Callable[[str], Any]) -> Any:
    if name in SETTINGS:
        return setting(name)
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return parse(raw.strip())
    except (ValueError, OverflowError):
        _warn_invalid(name, raw, accepted, str(default))
        return default


def env_bool(name: str, default: bool) -> bool:
    return _undeclared(name, default, _FLAG, parse_flag)


def env_float(name: str, default: float | None) -> float | None:
    return _undeclared(name, default, "a finite number", number_parser(-math.inf, math.inf))


def env_str(name: str, default: str | None = None) -> str | None:
    return _undeclared(name, default, "text", _text)
