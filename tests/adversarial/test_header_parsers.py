"""Property tests of the header parsers: any text a server sends gives a sane number or unknown, never an error.

And the formats providers really send give exactly the seconds they mean.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenrate.provider_numbers import MAX_COUNT, MAX_SECONDS
from tokenrate.providers.anthropic import AnthropicProvider
from tokenrate.providers.openai import OpenAIProvider
from tokenrate.ratelimits import parse_duration, parse_reset_time, parse_retry_after

UNITS = ("h", "m", "s", "ms", "us", "µs", "ns")
number_text = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.from_regex(r"\A-?[0-9]{1,400}(\.[0-9]{0,40})?\Z"),
    st.sampled_from(["nan", "inf", "-inf", "Infinity", "1e400", "1e-400", "", " ", "0x10", "1_000", "١٢"]),
)
duration_text = st.lists(st.tuples(number_text, st.sampled_from(UNITS)), min_size=1, max_size=4).map(
    lambda parts: "".join(n + u for n, u in parts)
)
header_text = st.one_of(number_text, duration_text, st.text(max_size=60), st.datetimes().map(str))

thorough = settings(deadline=None, max_examples=300)


def sane_seconds(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and 0.0 <= value <= MAX_SECONDS)


def sane_amount(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and 0.0 <= value <= MAX_COUNT)


@thorough
@given(header_text)
def test_openai_headers_never_raise_and_stay_in_range(text):
    parse_duration(text)  # a plain parser: it may say inf; the bounds apply where a header becomes a figure
    provider = OpenAIProvider()
    limits = provider.rate_limits({"x-ratelimit-reset-requests": text, "x-ratelimit-limit-requests": text})
    if limits is not None:
        window = limits.get("requests")
        assert sane_seconds(window.reset_s)
        assert sane_amount(window.limit)


@thorough
@given(header_text)
def test_anthropic_reset_times_never_raise_and_stay_in_range(text):
    headers = {f"anthropic-ratelimit-tokens-{part}": text for part in ("limit", "remaining", "reset")}
    limits = AnthropicProvider().rate_limits(headers)
    if limits is not None:
        window = limits.get("tokens")
        assert sane_seconds(window.reset_s)
        assert sane_amount(window.limit)
        assert sane_amount(window.remaining)


http_dates = st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))


@thorough
@given(st.one_of(header_text, http_dates), header_text)
def test_retry_after_never_raises_and_stays_in_range(seconds_text, millis_text):
    for headers in ({"retry-after": seconds_text}, {"retry-after-ms": millis_text, "retry-after": seconds_text}):
        assert sane_seconds(parse_retry_after(headers))
        limits = OpenAIProvider().rate_limits(headers)
        assert limits is None or sane_seconds(limits.retry_after_s)


@given(
    st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999), st.sampled_from(["s", "ms", ""])
)
def test_go_durations_mean_what_they_say(hours, minutes, seconds, millis, tail):
    text = f"{hours}h{minutes}m{seconds}.{millis:03d}s" if tail == "s" else f"{hours}h{minutes}m{seconds}s{millis}ms"
    if tail == "":
        text = f"{minutes}m{seconds}s"
        expected = minutes * 60 + seconds
    else:
        expected = hours * 3600 + minutes * 60 + seconds + millis / 1000
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("6m0s", 360), ("1h2m3.5s", 3723.5), ("120ms", 0.12), ("250us", 0.00025), ("3", 3), ("0.25", 0.25)],
)
def test_go_duration_examples(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@given(st.integers(min_value=-86400 * 400, max_value=86400 * 400), st.booleans())
def test_rfc3339_reset_times_are_seconds_from_now(offset, zulu):
    now = time.time()
    moment = datetime.fromtimestamp(now, tz=timezone.utc) + timedelta(seconds=offset)
    text = moment.isoformat()
    text = text.replace("+00:00", "Z") if zulu else text
    assert parse_reset_time(text, now=now) == pytest.approx(max(0.0, offset), abs=1e-3)
