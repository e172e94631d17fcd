"""Parsing providers' rate-limit headers into numbers and seconds.

Providers describe their limits differently (OpenAI: Go-style durations such as ``6m0s``; Anthropic: RFC 3339
reset times), so each adapter says *which* headers to read, and these helpers turn the values into a
`RateLimits` record. Every figure passes `tokenrate.provider_numbers` on the way: a value that is not a sane
number (negative, infinite, a 311-digit duration, a reset years away) is unknown, never passed on.
"""

from __future__ import annotations

import dataclasses
import email.utils
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from tokenrate.provider_numbers import MAX_SECONDS, amount, seconds
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
    Parses everything every time: an adapter reads its responses through a `RateLimitReader`, which is cheaper.
    """
    if not headers:
        return None
    relevant = _relevant_headers(headers)
    if not relevant:
        return None
    windows = tuple(_windows(relevant, kinds, parse_reset))
    return _limits(windows, relevant)


class RateLimitReader:
    """`read_rate_limits` for one provider's headers, cheap enough to run on every response.

    Real responses change their ``remaining`` counts on every answer, so whole header sets rarely repeat; single
    values do. So httpx headers are read from the bytes they keep, only this provider's headers are looked at, a
    plain count (``12345``) is read without decoding, and a limit or reset value is parsed once and kept, keyed by its
    raw bytes (at most ``size`` of them, then they start over; a value longer than ``MAX_VALUE_LEN``, not ASCII or
    rejected is never kept, so each rejection is logged as it happens). A reset given as a time of day
    (Anthropic's RFC 3339) is kept as that time, and turned into seconds from now on every read. ``retry-after`` is
    read afresh every time (an HTTP date means seconds from now too). Other header mappings are parsed in full by
    `read_rate_limits`.
    """

    __slots__ = (
        "_durations",
        "_kinds",
        "_layout",
        "_limits",
        "_parse_reset",
        "_size",
        "_slots",
        "_timed",
        "_times",
    )

    MAX_VALUE_LEN = 64
    """Longer raw values (not a real provider's) are parsed every time rather than kept."""

    def __init__(
        self,
        kinds: Iterable[tuple[str, str, str, str]],
        parse_reset: Callable[[str | None], float | None],
        *,
        size: int = 256,
    ) -> None:
        self._kinds = tuple(kinds)
        self._parse_reset = parse_reset
        self._timed = parse_reset is parse_reset_time
        self._size = size
        self._limits: dict[bytes, float] = {}
        """Kept limits."""
        self._durations: dict[bytes, float] = {}
        """Kept resets in seconds."""
        self._times: dict[bytes, float] = {}
        """Kept resets given as a time of day (unix time), counted from now at each read."""
        self._slots, self._layout = _slots(self._kinds)

    def __call__(self, headers: Mapping[str, str] | None) -> RateLimits | None:
        readable = _RAW_READABLE.get(type(headers))
        if readable is None:
            readable = _raw_readable(type(headers))
        if not readable or not self._slots:
            return read_rate_limits(headers, kinds=self._kinds, parse_reset=self._parse_reset)
        encoding = headers.encoding  # type: ignore[union-attr]
        found = self._found(headers._list, encoding == "ascii")  # type: ignore[union-attr]
        if found is None:
            return read_rate_limits(headers, kinds=self._kinds, parse_reset=self._parse_reset)
        now = time.time() if self._timed else 0.0
        limits = self._limits
        durations = self._durations
        times = self._times
        windows = []
        for kind, limit_name, remaining_name, reset_name, at in self._layout:
            limit = found[at]
            remaining = found[at + 1]
            reset: Any = found[at + 2]
            if limit is None and remaining is None and reset is None:
                continue
            if limit is not None:
                kept = limits.get(limit)
                limit = kept if kept is not None else self._parsed_limit(limit, limit_name, encoding)
            if remaining is not None:
                # Up to 15 digits: a count below `MAX_COUNT`, as `amount` accepts it (anything else is checked there).
                remaining = (
                    float(remaining)
                    if len(remaining) < 16 and remaining.isdigit()
                    else _amount(remaining, remaining_name, encoding)
                )
            if reset is not None:
                kept = durations.get(reset)
                if kept is None:
                    moment = times.get(reset)
                    if moment is None or moment - now > MAX_SECONDS:  # new, or far off again (a clock set back)
                        kept = self._parsed_reset(reset, reset_name, encoding, now)
                    else:
                        kept = moment - now if moment > now else 0.0
                reset = kept
            if limit is None and remaining is None and reset is None:
                continue
            windows.append(_window(kind, limit, remaining, reset))
        retry_after = None
        if found[-2] is not None or found[-1] is not None:
            retry_after = parse_retry_after(
                {
                    name: value.decode(encoding)
                    for name, value in (("retry-after-ms", found[-2]), ("retry-after", found[-1]))
                    if value is not None
                }
            )
        if not windows and retry_after is None:
            return None
        return _rate_limits(tuple(windows), retry_after)

    def _found(self, entries: list[tuple[bytes, bytes, bytes]], plain: bool) -> list[bytes | None] | None:
        """The raw value of each header read (see `_slots`), ``None`` where it was not sent; no list at all when a
        header name is not ASCII (Unicode lower-casing may turn it into a rate-limit name: K, the Kelvin sign, into
        k), for `read_rate_limits` to read. ``plain``: the headers are all ASCII (httpx's encoding says so)."""
        slots = self._slots
        found: list[Any] = [None] * len(slots)
        for _, name, value in entries:
            slot = slots.get(name)
            if slot is None:
                if not plain and not name.isascii():
                    return None
            elif found[slot] is None:
                found[slot] = value
            else:
                found[slot] += b", " + value  # as ``Headers.items()`` joins a repeated header
        return found

    def _parsed_limit(self, raw: bytes, name: str, encoding: str) -> float | None:
        """A limit not kept yet: parsed and checked, and kept when it is usable, short and ASCII."""
        limit = float(raw) if len(raw) < 16 and raw.isdigit() else _amount(raw, name, encoding)
        if limit is not None:
            self._keep(self._limits, raw, limit)
        return limit

    def _parsed_reset(self, raw: bytes, name: str, encoding: str, now: float) -> float | None:
        """A reset not kept yet (or kept as a time now too far off): parsed and checked, and kept when it is
        usable, short and ASCII (a time of day as that time). An empty value is none (and no rejection)."""
        if not raw:
            return None
        text = raw.decode(encoding)
        if not self._timed:
            reset = seconds(self._parse_reset(text), f"{name} header", text)
            if reset is not None:
                self._keep(self._durations, raw, reset)
            return reset
        moment = _reset_moment(text)
        if moment is None:
            return seconds(None, f"{name} header", text)
        figure, is_time = moment
        reset = seconds(max(0.0, figure - now) if is_time else figure, f"{name} header", text)
        if reset is not None:
            self._keep(self._times if is_time else self._durations, raw, figure)
        return reset

    def _keep(self, kept: dict[bytes, float], raw: bytes, figure: float) -> None:
        """Keep a parsed figure by its raw bytes; bounded: at ``size`` kept values, all of them start over."""
        if len(raw) <= self.MAX_VALUE_LEN and raw.isascii():
            if len(self) >= self._size:
                for values in (self._limits, self._durations, self._times):
                    values.clear()
            kept[raw] = figure

    def __len__(self) -> int:
        """How many values are kept (for tests of the bound)."""
        return len(self._limits) + len(self._durations) + len(self._times)


def _slots(kinds: tuple[tuple[str, str, str, str], ...]) -> tuple[dict[bytes, int], tuple[Any, ...]]:
    """Where `RateLimitReader` puts each header it reads, by lower-case name bytes (as httpx keeps them): each
    window's limit, remaining and reset in turn, then ``retry-after-ms`` and ``retry-after``; and ``(kind, limit,
    remaining, reset names, where its limit is)`` per window. No names when the raw path would read them
    differently from `read_rate_limits` (not lower-case ASCII, not a rate-limit name, repeated)."""
    slots: dict[bytes, int] = {}
    layout = []
    for kind, *window_names in kinds:
        layout.append((kind, *window_names, len(slots)))
        for name in window_names:
            if not name.isascii() or name != name.lower() or not _rate_limit_name(name) or name.encode() in slots:
                return {}, ()
            slots[name.encode()] = len(slots)
    slots[b"retry-after-ms"] = len(slots)
    slots[b"retry-after"] = len(slots)
    return slots, tuple(layout)


def _rate_limit_name(name: str) -> bool:
    """A lower-case header name `read_rate_limits` reads as a rate-limit one."""
    return "ratelimit" in name or "tokenlimit" in name  # Together: x-tokenlimit-*


_RAW_READABLE: dict[type, bool] = {}


def _raw_readable(cls: type) -> bool:
    """httpx's and httpx2's own ``Headers``: a list of ``(name, lower-case name, value)`` bytes and an encoding."""
    readable = cls.__name__ == "Headers" and cls.__module__.split(".")[0] in ("httpx", "httpx2")
    if len(_RAW_READABLE) < 64:
        _RAW_READABLE[cls] = readable
    return readable


def _amount(raw: bytes, name: str, encoding: str) -> float | None:
    """A limit or remaining count that is not plain digits: parsed and checked (an empty one is no figure)."""
    if not raw:
        return None
    text = raw.decode(encoding)
    return amount(parse_number(text), f"{name} header", text)


class _RateLimitWindowDraft:
    """`RateLimitWindow`'s slots, settable: filled in, then made a `RateLimitWindow` (see `_new_window`)."""

    __slots__ = getattr(RateLimitWindow, "__slots__", ())


class _RateLimitsDraft:
    """`RateLimits`' slots, settable (see `_new_window`)."""

    __slots__ = getattr(RateLimits, "__slots__", ())


def _new_window(kind: str, limit: float | None, remaining: float | None, reset_s: float | None) -> RateLimitWindow:
    """`RateLimitWindow(...)` at a third of the cost, for every window of every response.

    A frozen dataclass's ``__init__`` sets each field through a call of ``object.__setattr__``; here the fields are
    set on an object with the same slots, which then becomes a `RateLimitWindow` (``__class__`` assignment, which
    Python allows between classes of the same layout): the same frozen record. Checked once by `_if_same`.
    """
    window = _RateLimitWindowDraft()
    window.kind = kind  # type: ignore[misc]
    window.limit = limit  # type: ignore[misc]
    window.remaining = remaining  # type: ignore[misc]
    window.reset_s = reset_s  # type: ignore[misc]
    window.__class__ = RateLimitWindow  # type: ignore[assignment]
    return window  # type: ignore[return-value]


def _new_rate_limits(windows: tuple[RateLimitWindow, ...], retry_after_s: float | None) -> RateLimits:
    """`RateLimits(...)` the way `_new_window` builds a window."""
    limits = _RateLimitsDraft()
    limits.windows = windows  # type: ignore[misc]
    limits.retry_after_s = retry_after_s  # type: ignore[misc]
    limits.__class__ = RateLimits  # type: ignore[assignment]
    return limits  # type: ignore[return-value]


def _if_same(fast: Callable[..., Any], record: type, *fields: Any) -> Callable[..., Any]:
    """``fast`` if it builds the same record as the record's own constructor here (same type, value, hash and
    repr, frozen), else the constructor (another Python, or a record whose layout changed)."""
    same = False
    try:
        built, expected = fast(*fields), record(*fields)
        same = type(built) is record and built == expected and hash(built) == hash(expected)
        same = same and repr(built) == repr(expected)
        setattr(built, record.__slots__[0], None)  # raises: a frozen record
    except dataclasses.FrozenInstanceError:
        return fast if same else record
    except (AttributeError, TypeError, IndexError):  # not the same layout: records built the ordinary way
        pass
    return record


_window: Callable[[str, float | None, float | None, float | None], RateLimitWindow] = _if_same(
    _new_window, RateLimitWindow, "tokens", 1.0, 2.0, 3.0
)
_rate_limits: Callable[[tuple[RateLimitWindow, ...], float | None], RateLimits] = _if_same(
    _new_rate_limits, RateLimits, (RateLimitWindow("requests", 1.0, None, 0.5),), 2.0
)


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
) -> list[RateLimitWindow]:
    """The windows the headers describe (a window none of whose figures is known is left out)."""
    windows = []
    for kind, limit_name, remaining_name, reset_name in kinds:
        limit = _figure(relevant, limit_name, parse_number, amount)
        remaining = _figure(relevant, remaining_name, parse_number, amount)
        reset = _figure(relevant, reset_name, parse_reset, seconds)
        if limit is None and remaining is None and reset is None:
            continue
        windows.append(RateLimitWindow(kind=kind, limit=limit, remaining=remaining, reset_s=reset))
    return windows


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
