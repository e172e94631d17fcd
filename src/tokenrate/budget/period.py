"""Budget periods: calendar days, ISO weeks and months in a time zone, or rolling windows such as ``1h``.

Spend is kept in *buckets*. A calendar period is one bucket (``2026-03-14``, ``2026-W11``, ``2026-03``); a
rolling window of length W is `ROLLING_BUCKETS` buckets of W / `ROLLING_BUCKETS` seconds, and what a rolling
budget has spent is the sum of the buckets that overlap the last W seconds (so a ``1h`` budget forgets spend in
5-minute steps). The same bucket keys name the counters in a shared store.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

DAY = "day"
WEEK = "week"
MONTH = "month"
CALENDAR = (DAY, WEEK, MONTH)
ROLLING_BUCKETS = 12
MIN_ROLLING_S = 60.0
MAX_ROLLING_S = 366 * 86_400.0

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}
_ROLLING = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WORD = {DAY: "daily", WEEK: "weekly", MONTH: "monthly"}


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of a period: its key (stable across processes and machines) and its [start, end) times."""

    key: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period (``day``, ``week``, ``month``) or a rolling window (``rolling_s`` seconds)."""

    name: str
    """As configured: ``day``, ``week``, ``month``, ``1h``, ``30m``, ``7d``..."""
    rolling_s: float | None = None

    @property
    def word(self) -> str:
        """``daily``, ``weekly``, ``monthly``, ``rolling 1h``."""
        return _WORD.get(self.name, f"rolling {self.name}")

    @property
    def bucket_s(self) -> float | None:
        return None if self.rolling_s is None else self.rolling_s / ROLLING_BUCKETS

    def bucket(self, ts: float, tz: tzinfo | None) -> Bucket:
        """The bucket a call that started at ``ts`` counts in."""
        size = self.bucket_s
        if size is None:
            return Bucket(*period_bounds(ts, self.name, tz))
        index = math.floor(ts / size)
        return Bucket(f"{self.name}@{index}", index * size, (index + 1) * size)

    def window_start(self, now: float, tz: tzinfo | None) -> float:
        """The start of the oldest bucket that still counts at ``now``."""
        size = self.bucket_s
        if size is None:
            return period_bounds(now, self.name, tz)[1]
        return (math.floor(now / size) - ROLLING_BUCKETS + 1) * size

    def window_key(self, now: float, tz: tzinfo | None) -> str:
        """What the status line shows for the window: ``2026-03-14``, or ``last 1h``."""
        return self.bucket(now, tz).key if self.rolling_s is None else f"last {self.name}"


def parse_period(text: object) -> Period:
    """``day``, ``week``, ``month``, or a rolling window ``<number><s|m|h|d|w>`` (at least a minute)."""
    if not isinstance(text, str):
        raise ValueError(f"period must be a string such as 'day', 'month' or '1h', not {text!r}")
    value = text.strip().lower()
    if value in CALENDAR:
        return Period(value)
    match = _ROLLING.fullmatch(value)
    if match is None:
        raise ValueError(f"period {text!r} is not day, week, month or a rolling window such as 1h, 30m, 7d")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_ROLLING_S <= seconds <= MAX_ROLLING_S:
        raise ValueError(f"rolling period {text!r} must be from 1m to 366d")
    return Period(value.replace(" ", ""), seconds)


def period_bounds(ts: float, period: str, tz: tzinfo | None) -> tuple[str, float, float]:
    """The calendar period containing ``ts``: (key, start, end) with start/end as Unix times; DST-safe."""
    moment = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts)
    if period == DAY:
        first = moment.date()
        following = first + timedelta(days=1)
        key = first.isoformat()
    elif period == WEEK:
        first = moment.date() - timedelta(days=moment.weekday())
        following = first + timedelta(days=7)
        year, week, _ = first.isocalendar()
        key = f"{year:04d}-W{week:02d}"
    else:
        first = date(moment.year, moment.month, 1)
        following = date(moment.year + (moment.month == 12), moment.month % 12 + 1, 1)
        key = f"{moment.year:04d}-{moment.month:02d}"
    return key, _midnight(first, tz), _midnight(following, tz)


def _midnight(day: date, tz: tzinfo | None) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
