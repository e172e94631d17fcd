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
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return parse_duration(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


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
    """
    if not headers:
        return None
    # One pass over the headers (httpx's case-insensitive lookups scan them all, once per name).
    relevant = {}
    for key, value in headers.items():
        name = key.lower()
        if "ratelimit" in name or "tokenlimit" in name or name.startswith("retry-after"):  # Together: x-tokenlimit-*
            relevant[name] = value
    if not relevant:
        return None
    windows = []
    for kind, limit_name, remaining_name, reset_name in kinds:
        limit = _figure(relevant, limit_name, parse_number, amount)
        remaining = _figure(relevant, remaining_name, parse_number, amount)
        reset = _figure(relevant, reset_name, parse_reset, seconds)
        if limit is None and remaining is None and reset is None:
            continue
        windows.append(RateLimitWindow(kind=kind, limit=limit, remaining=remaining, reset_s=reset))
    retry_after = parse_retry_after(relevant)
    if not windows and retry_after is None:
        return None
    return RateLimits(windows=tuple(windows), retry_after_s=retry_after)


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
