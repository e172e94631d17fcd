"""Parsing providers' rate-limit headers into numbers and seconds.

Providers describe their limits differently (OpenAI: Go-style durations such as ``6m0s``; Anthropic: RFC 3339
reset times), so each adapter says *which* headers to read, and these helpers turn the values into a
`RateLimits` record. Every figure passes `tokenrate.provider_numbers` on the way: a value that is not a sane
number (negative, infinite, a 311-digit duration, a reset years away) is unknown, never passed on.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from tokenrate.provider_numbers import amount, seconds
from tokenrate.records import RateLimits, RateLimitWindow

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_number(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip()
    if not text or not (text[-1].isdigit() or text[-1] == "."):
        return None  # "6m0s", "20ms": not a plain number (and no exception raised to find out)
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_duration(value: str | None) -> float | None:
    """Go-style durations (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) or plain seconds, into seconds."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    plain = parse_number(text)
    if plain is not None:
        return plain
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        return None
    return total


def parse_reset_time(value: str | None, *, now: float | None = None) -> float | None:
    """An RFC 3339 time (Anthropic's ``...-reset``) into seconds from now (never negative)."""
    moment = _reset_moment(value)
    if moment is None:
        return None
    figure, is_time = moment
    if not is_time:
        return figure
    return max(0.0, figure - (time.time() if now is None else now))


def _reset_moment(value: str | None) -> tuple[float, bool] | None:
    """What a reset header says, before "now" is known: ``(unix time, True)`` for an RFC 3339 time, else
    ``(seconds, False)`` for a duration; ``None`` when it is neither."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        duration = parse_duration(text)
        return None if duration is None else (duration, False)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp(), True


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date), like the SDKs read them.

    A date in the past means "now" (0); a value that is negative, not finite or over a year is unknown.
    """
    if headers is None:
        return None
    raw_millis = _get(headers, "retry-after-ms")
    millis = parse_number(raw_millis)
    if millis is not None:
        return seconds(millis / 1000.0, "retry-after-ms header", raw_millis)
    raw = _get(headers, "retry-after")
    if not raw:
        return None
    plain = parse_number(raw)
    if plain is not None:
        return seconds(plain, "retry-after header", raw)
    parsed = email.utils.parsedate_tz(raw)
    until = None
    if parsed is not None:
        try:
            until = max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))
        except (OverflowError, ValueError):
            until = None
    return seconds(until, "retry-after header", raw)


def read_rate_limits(
    headers: Mapping[str, str] | None,
    *,
    kinds: Iterable[tuple[str, str, str, str]],
    parse_reset: Callable[[str | None], float | None],
) -> RateLimits | None:
    """Build `RateLimits` from ``(kind, limit_header, remaining_header, reset_header)`` tuples.

    Returns ``None`` when the response carried none of those headers (e.g. a provider that has none).
    Parses every time: an adapter reads its responses through a `RateLimitReader`, which remembers.
    """
    if not headers:
        return None
    relevant = _relevant_headers(headers)
    if not relevant:
        return None
    windows = tuple(_windows(relevant, kinds, parse_reset)[0])
    return _limits(windows, relevant)


class RateLimitReader:
    """`read_rate_limits` for one provider's headers, parsing only raw values it has not parsed before.

    A client's responses mostly repeat their rate-limit headers (the limits always, the remaining counts and
    resets often), so the windows parsed from one set of raw values are kept, keyed by those raw strings: a
    changed value is another key, parsed afresh. Bounded: at most ``size`` sets of short values, then it starts
    over. A set with a rejected figure is never kept (each rejection is logged as it happens). A reset given as
    a time of day (Anthropic's RFC 3339) is kept as that time, and turned into seconds from now on every read.
    ``retry-after`` is read afresh every time (an HTTP date means seconds from now too).
    """

    __slots__ = ("_cache", "_kinds", "_parse_reset", "_size", "_timed")

    MAX_VALUE_LEN = 64
    """Longer raw values (not a real provider's) are parsed every time rather than kept."""

    def __init__(
        self,
        kinds: Iterable[tuple[str, str, str, str]],
        parse_reset: Callable[[str | None], float | None],
        *,
        size: int = 8,
    ) -> None:
        self._kinds = tuple(kinds)
        self._parse_reset = parse_reset
        self._timed = parse_reset is parse_reset_time
        self._size = size
        self._cache: dict[tuple[tuple[str, str], ...], tuple[Any, ...]] = {}

    def __call__(self, headers: Mapping[str, str] | None) -> RateLimits | None:
        if not headers:
            return None
        raw = _relevant_raw(headers)
        relevant: dict[str, str] | None = None
        if raw is None:
            relevant = _relevant_items(headers)
            if not relevant:
                return None
            key: tuple[Any, ...] = tuple(relevant.items())
        elif len(raw) == 2:  # the encoding and the flag alone: no rate-limit header
            return None
        else:
            key = raw  # httpx's bytes as they came: nothing decoded unless they are new
        parsed = self._cache.get(key)
        if parsed is None:
            if relevant is None:
                relevant = _decoded(raw)  # type: ignore[arg-type]
            if self._timed:
                parsed, keep = _timed_windows(relevant, self._kinds)
            else:
                windows, keep = _windows(relevant, self._kinds, self._parse_reset)
                parsed = tuple(windows)
            if keep and all(len(value) <= self.MAX_VALUE_LEN for value in relevant.values()):
                if len(self._cache) >= self._size:
                    self._cache = {}
                self._cache[key] = parsed
        if relevant is None and raw[1]:  # type: ignore[index]  # a retry-after came: read afresh, never kept
            relevant = _decoded(raw)  # type: ignore[arg-type]
        return _limits(_resolve_timed(parsed) if self._timed else parsed, relevant)

    def __len__(self) -> int:
        """How many sets of raw values are kept (for tests of the bound)."""
        return len(self._cache)


def _relevant_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The rate-limit and retry-after headers, by lower-case name (duplicates joined as ``a, b``)."""
    raw = _relevant_raw(headers)
    return _relevant_items(headers) if raw is None else _decoded(raw)


def _relevant_raw(headers: Mapping[str, str]) -> tuple[Any, ...] | None:
    """httpx / httpx2 headers: ``(encoding, any retry-after, name, value, name, value...)`` of the rate-limit and
    retry-after ones, as the lower-case and value bytes the headers object keeps, not decoded (its ``items()``
    decodes every header). ``None`` for anything else, or when a header name is not ASCII: the generic path reads
    those."""
    entries = getattr(headers, "_list", None)
    encoding = getattr(headers, "encoding", None)
    if type(entries) is not list or type(encoding) is not str:
        return None
    found: list[Any] = [encoding, False]
    for entry in entries:
        if type(entry) is not tuple or len(entry) != 3:
            return None
        lowered = entry[1]
        if type(lowered) is not bytes or not lowered.isascii() or type(entry[2]) is not bytes:
            return None
        if b"ratelimit" in lowered or b"tokenlimit" in lowered:
            found.append(lowered)
            found.append(entry[2])
        elif lowered.startswith(b"retry-after"):
            found[1] = True
            found.append(lowered)
            found.append(entry[2])
    return tuple(found)


def _decoded(raw: tuple[Any, ...]) -> dict[str, str]:
    """`_relevant_raw`'s headers decoded as the headers object decodes them (a repeated one joined, ``a, b``)."""
    encoding = raw[0]
    relevant: dict[str, str] = {}
    for i in range(2, len(raw), 2):
        name = raw[i].decode(encoding)
        text = raw[i + 1].decode(encoding)
        if name in relevant:
            relevant[name] += f", {text}"  # as ``Headers.items()`` joins a repeated header
        else:
            relevant[name] = text
    return relevant


def _relevant_items(headers: Mapping[str, str]) -> dict[str, str]:
    # One pass over the headers (httpx's case-insensitive lookups scan them all, once per name).
    relevant = {}
    for key, value in headers.items():
        name = key.lower()
        if "ratelimit" in name or "tokenlimit" in name or name.startswith("retry-after"):  # Together: x-tokenlimit-*
            relevant[name] = value
    return relevant


def _windows(
    relevant: Mapping[str, str],
    kinds: Iterable[tuple[str, str, str, str]],
    parse_reset: Callable[[str | None], float | None],
) -> tuple[list[RateLimitWindow], bool]:
    """The windows the headers describe, and whether every figure sent was usable (nothing was rejected)."""
    windows = []
    usable = True
    for kind, limit_name, remaining_name, reset_name in kinds:
        limit = _figure(relevant, limit_name, parse_number, amount)
        remaining = _figure(relevant, remaining_name, parse_number, amount)
        reset = _figure(relevant, reset_name, parse_reset, seconds)
        usable = usable and _accepted(relevant, limit_name, limit)
        usable = usable and _accepted(relevant, remaining_name, remaining) and _accepted(relevant, reset_name, reset)
        if limit is None and remaining is None and reset is None:
            continue
        windows.append(RateLimitWindow(kind=kind, limit=limit, remaining=remaining, reset_s=reset))
    return windows, usable


class _TimedWindow(NamedTuple):
    """A window as `RateLimitReader` keeps it when resets may be times of day (``reset_at``, a unix time: turned
    into seconds from now each time it is read); ``reset_s`` is the reset otherwise (a duration, or unknown)."""

    kind: str
    limit: float | None
    remaining: float | None
    reset_s: float | None
    reset_at: float | None
    reset_name: str
    raw_reset: str | None


def _timed_windows(
    relevant: Mapping[str, str], kinds: Iterable[tuple[str, str, str, str]]
) -> tuple[tuple[_TimedWindow, ...], bool]:
    """`_windows` with `parse_reset_time`, keeping a reset given as a time as that time."""
    windows = []
    usable = True
    now = time.time()
    for kind, limit_name, remaining_name, reset_name in kinds:
        limit = _figure(relevant, limit_name, parse_number, amount)
        remaining = _figure(relevant, remaining_name, parse_number, amount)
        raw_reset = relevant.get(reset_name)
        reset = reset_at = None
        if raw_reset:  # as `_figure` does with `parse_reset_time`, the time of day kept
            moment = _reset_moment(raw_reset)
            figure = None
            if moment is not None:
                figure = max(0.0, moment[0] - now) if moment[1] else moment[0]
            reset = seconds(figure, f"{reset_name} header", raw_reset)
            if reset is not None and moment is not None and moment[1]:
                reset_at = moment[0]
        usable = usable and _accepted(relevant, limit_name, limit)
        usable = usable and _accepted(relevant, remaining_name, remaining) and _accepted(relevant, reset_name, reset)
        if limit is None and remaining is None and reset is None:
            continue
        windows.append(_TimedWindow(kind, limit, remaining, reset, reset_at, reset_name, raw_reset))
    return tuple(windows), usable


def _resolve_timed(parsed: tuple[_TimedWindow, ...]) -> tuple[RateLimitWindow, ...]:
    """The kept windows with their resets counted from now."""
    now = time.time()
    windows = []
    for entry in parsed:
        reset = entry.reset_s
        if entry.reset_at is not None:
            reset = seconds(max(0.0, entry.reset_at - now), f"{entry.reset_name} header", entry.raw_reset)
        windows.append(RateLimitWindow(kind=entry.kind, limit=entry.limit, remaining=entry.remaining, reset_s=reset))
    return tuple(windows)


def _limits(windows: tuple[RateLimitWindow, ...], relevant: Mapping[str, str] | None) -> RateLimits | None:
    """``relevant`` is None when no retry-after header came (the windows were kept from raw values)."""
    retry_after = (
        parse_retry_after(relevant)
        if relevant is not None and ("retry-after-ms" in relevant or "retry-after" in relevant)
        else None
    )
    if not windows and retry_after is None:
        return None
    return RateLimits(windows=windows, retry_after_s=retry_after)


def _accepted(relevant: Mapping[str, str], name: str, figure: float | None) -> bool:
    """A header that was sent gave a figure (``_figure`` returns None for a rejected one, after logging it)."""
    return figure is not None or not relevant.get(name)


def _figure(
    headers: Mapping[str, str],
    name: str,
    parse: Callable[[str | None], float | None],
    check: Callable[[float | None, str, str], float | None],
) -> float | None:
    """One header's value, parsed and checked (a header sent but unusable is logged once, then unknown)."""
    raw = headers.get(name)
    if not raw:
        return None
    return check(parse(raw), f"{name} header", raw)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    # httpx/httpx2 Headers are case-insensitive; plain dicts (google-genai) are usually lower-case already.
    value = headers.get(name)
    if value is None and not hasattr(headers, "get_list"):
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value
