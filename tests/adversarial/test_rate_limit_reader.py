"""`RateLimitReader` keeps the reset values it parsed, by raw bytes: it must read exactly what a fresh parse reads.

A changed raw value is parsed afresh, a reset given as a time is counted from the moment of each read, rejected
values are never kept (each one is logged again), and the kept values are bounded.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import time
from datetime import datetime, timedelta, timezone

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenrate import ratelimits
from tokenrate.providers.anthropic import _RATE_LIMIT_HEADERS as ANTHROPIC_HEADERS
from tokenrate.providers.openai import RATE_LIMIT_HEADERS as OPENAI_HEADERS
from tokenrate.ratelimits import RateLimitReader, parse_duration, parse_reset_time, read_rate_limits
from tokenrate.records import RateLimits, RateLimitWindow

OPENAI = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-limit-tokens": "30000",
    "x-ratelimit-remaining-tokens": "29850",
    "x-ratelimit-reset-tokens": "6m0s",
    "content-type": "application/json",
    "x-request-id": "req_1",
}


def openai_reader() -> RateLimitReader:
    return RateLimitReader(OPENAI_HEADERS, parse_duration)


def fresh(headers: object, kinds=OPENAI_HEADERS, parse_reset=parse_duration):
    return read_rate_limits(headers, kinds=kinds, parse_reset=parse_reset)


def test_a_kept_set_reads_as_a_fresh_parse():
    reader = openai_reader()
    headers = httpx2.Headers(OPENAI)
    first = reader(headers)
    assert first is not None
    assert first.get("tokens").reset_s == 360.0
    assert reader(headers) == first == fresh(headers)
    assert len(reader) == 4  # the two limits and the two resets; remaining counts are read as they come


def test_a_changed_raw_value_is_parsed_afresh():
    reader = openai_reader()
    reader(httpx2.Headers(OPENAI))
    changed = httpx2.Headers({**OPENAI, "x-ratelimit-remaining-tokens": "100", "x-ratelimit-reset-tokens": "2s"})
    window = reader(changed).get("tokens")
    assert (window.remaining, window.reset_s) == (100.0, 2.0)
    # ...and the first set still reads as it did.
    assert reader(httpx2.Headers(OPENAI)).get("tokens").remaining == 29850.0


def test_kept_values_are_bounded():
    reader = RateLimitReader(OPENAI_HEADERS, parse_duration, size=8)
    for step in range(100):
        changed = {"x-ratelimit-remaining-requests": str(step), "x-ratelimit-reset-requests": f"{step}ms"}
        limits = reader(httpx2.Headers({**OPENAI, **changed}))
        assert (limits.get("requests").remaining, limits.get("requests").reset_s) == (step, pytest.approx(step / 1000))
        assert limits.get("tokens").reset_s == 360.0
        assert 1 <= len(reader) <= 8


def test_long_values_are_not_kept():
    reader = openai_reader()
    long_value = "7." + "0" * RateLimitReader.MAX_VALUE_LEN
    headers = httpx2.Headers(
        {**OPENAI, "x-ratelimit-limit-requests": long_value, "x-ratelimit-reset-tokens": long_value}
    )
    for _ in range(2):
        limits = reader(headers)
        assert (limits.get("requests").limit, limits.get("tokens").reset_s) == (7.0, 7.0)
        assert len(reader) == 2  # "30000" and "120ms" only


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-ratelimit-remaining-tokens", "-5"),
        ("x-ratelimit-limit-tokens", "9" * 20),  # digits, but more than any count
        ("x-ratelimit-reset-tokens", "9999999h"),  # a duration over a year
        ("x-ratelimit-reset-tokens", "-5s"),
    ],
)
def test_a_rejected_figure_is_never_kept_and_logged_at_every_read(caplog, name, value):
    reader = openai_reader()
    headers = httpx2.Headers({**OPENAI, name: value})
    with caplog.at_level(logging.DEBUG, logger="tokenrate"):
        for _ in range(3):
            limits = reader(headers)
            assert limits == fresh(headers)
            assert getattr(limits.get("tokens"), name.split("-")[2].replace("reset", "reset_s")) is None
    assert len(reader) == (4 if "remaining" in name else 3)  # the rejected value is not among the kept ones
    assert sum(value[:12] in record.getMessage() and name in record.getMessage() for record in caplog.records) >= 3


def test_a_reset_time_is_counted_from_each_read(monkeypatch):
    reader = RateLimitReader(ANTHROPIC_HEADERS, parse_reset_time)
    now = time.time()
    reset = datetime.fromtimestamp(int(now) + 100, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    headers = httpx2.Headers(
        {
            "anthropic-ratelimit-tokens-limit": "80000",
            "anthropic-ratelimit-tokens-remaining": "79000",
            "anthropic-ratelimit-tokens-reset": reset,
            "anthropic-ratelimit-requests-reset": "30s",  # not a time: a duration, kept as it is
        }
    )
    monkeypatch.setattr(time, "time", lambda: now)
    first = reader(headers)
    monkeypatch.setattr(time, "time", lambda: now + 40)
    later = reader(headers)
    assert len(reader) == 3  # the limit, the time and the duration
    assert first.get("tokens").reset_s == pytest.approx(int(now) + 100 - now)
    assert later.get("tokens").reset_s == pytest.approx(int(now) + 60 - now)
    assert later.get("tokens").limit == 80000.0
    assert later.get("tokens").remaining == 79000.0
    assert first.get("requests").reset_s == later.get("requests").reset_s == 30.0
    monkeypatch.setattr(time, "time", lambda: now + 1000)
    assert reader(headers).get("tokens").reset_s == 0.0  # past: now, never negative
    assert later == fresh(headers, ANTHROPIC_HEADERS, lambda text: parse_reset_time(text, now=now + 40))


header_value = st.one_of(
    st.integers(-10, 10**6).map(str),
    st.sampled_from(["120ms", "6m0s", "1h2m3.5s", "", " ", "nan", "1e400", "١٢", "2030-01-01T00:00:00Z"]),
    st.text(max_size=12),
)
header_name = st.sampled_from(
    [
        "x-ratelimit-limit-requests",
        "X-RateLimit-Remaining-Requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "retry-after",
        "retry-after-ms",
        "x-request-id",
        "x-ratelimit-other",
    ]
)


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(header_name, header_value), max_size=10))
def test_any_headers_read_the_same_kept_or_fresh_raw_or_decoded(pairs):
    try:
        headers = httpx2.Headers(pairs)
    except Exception:  # a value httpx2 itself refuses never reaches an adapter
        return
    reader = openai_reader()
    expected = fresh(dict(headers.items()))  # the generic path, over decoded headers
    assert fresh(headers) == expected  # the raw-bytes path
    assert reader(headers) == expected
    assert reader(headers) == expected  # kept (or, for a rejected figure, parsed again)


def test_non_ascii_header_names_take_the_generic_path():
    headers = httpx2.Headers([(b"x-ratelimit-limit-requests", b"7"), ("x-caf\u00e9".encode(), b"1")])
    assert fresh(headers).get("requests").limit == 7.0
    assert ratelimits._relevant_headers(headers) == {"x-ratelimit-limit-requests": "7"}


def test_repeated_headers_are_joined_as_httpx_joins_them():
    headers = httpx2.Headers([("x-ratelimit-limit-requests", "5"), ("X-RateLimit-Limit-Requests", "6")])
    assert ratelimits._relevant_headers(headers) == {"x-ratelimit-limit-requests": "5, 6"}
    assert fresh(headers) is None  # "5, 6" is no number: unknown, as before


def test_reset_time_keeps_its_meaning():
    now = time.time()
    moment = datetime.fromtimestamp(now, tz=timezone.utc) + timedelta(seconds=90)
    assert parse_reset_time(moment.isoformat(), now=now) == pytest.approx(90.0, abs=1e-3)
    assert parse_reset_time("1m30s", now=now) == 90.0
    assert parse_reset_time("not a time", now=now) is None


def test_retry_after_is_read_afresh_next_to_kept_windows(monkeypatch):
    reader = openai_reader()
    now = time.time()
    date = datetime.fromtimestamp(int(now) + 30, tz=timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers = httpx2.Headers({**OPENAI, "retry-after": date})
    monkeypatch.setattr(time, "time", lambda: int(now))
    first = reader(headers)
    monkeypatch.setattr(time, "time", lambda: int(now) + 10)
    later = reader(headers)
    assert len(reader) == 4  # the limits and resets, never the retry-after
    assert first.retry_after_s == 30.0
    assert later.retry_after_s == 20.0  # an HTTP date: seconds from each read, never kept
    assert later.windows == first.windows
    assert reader(httpx2.Headers(OPENAI)).retry_after_s is None


def test_the_same_bytes_decoded_another_way_are_another_set():
    """httpx decodes every header of a response one way (ascii, utf-8 or latin-1, whatever fits them all): the
    same raw bytes of a rate-limit header may mean other text next to other headers, so they are kept apart."""
    reader = openai_reader()
    value = "5\u0661".encode()  # "51" in utf-8 (an Arabic-Indic one), no number at all in latin-1
    as_utf8 = httpx2.Headers([(b"x-ratelimit-limit-requests", value), (b"x-ratelimit-remaining-requests", b"4")])
    as_latin1 = httpx2.Headers([*as_utf8.raw, (b"x-other", b"\xff")])
    assert reader(as_utf8).get("requests").limit == 51.0
    for headers in (as_latin1, as_utf8):
        assert reader(headers) == fresh(dict(headers.items()))
    assert reader(as_latin1).get("requests").limit is None


def test_a_reset_time_over_a_year_away_is_never_kept_and_a_kept_one_is_checked_at_every_read(monkeypatch):
    reader = RateLimitReader(ANTHROPIC_HEADERS, parse_reset_time)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    soon = datetime.fromtimestamp(int(now) + 100, tz=timezone.utc).isoformat()
    far = datetime.fromtimestamp(int(now) + 400 * 86400, tz=timezone.utc).isoformat()
    headers = httpx2.Headers({"anthropic-ratelimit-tokens-reset": soon, "anthropic-ratelimit-requests-reset": far})
    limits = reader(headers)
    assert limits.get("requests") is None
    assert limits.get("tokens").reset_s == pytest.approx(int(now) + 100 - now)
    assert len(reader) == 1
    monkeypatch.setattr(time, "time", lambda: now - 400 * 86400)  # the clock set back: the kept time is too far now
    assert reader(headers) is None
    assert reader(headers) == fresh(headers, ANTHROPIC_HEADERS, parse_reset_time)


def test_other_header_mappings_are_parsed_in_full_and_nothing_is_kept():
    reader = openai_reader()
    plain = {**OPENAI, "Retry-After": "3"}
    assert reader(plain) == fresh(plain)
    assert reader(plain).retry_after_s == 3.0
    assert len(reader) == 0


def test_a_non_ascii_name_that_lower_cases_into_a_rate_limit_name_reads_as_decoded():
    kelvin = "x-ratelimit-remaining-to\u212aens".encode()  # K, the Kelvin sign: lower-cased by str.lower() into k
    headers = httpx2.Headers([*httpx2.Headers(OPENAI).raw, (kelvin, b"17")])
    assert headers.encoding == "utf-8"
    assert openai_reader()(headers) == fresh(dict(headers.items()))
    assert openai_reader()(headers).get("tokens").remaining == 17.0  # the generic path: the later name wins


def test_values_decoded_another_way_are_never_kept():
    reader = RateLimitReader(ANTHROPIC_HEADERS, parse_reset_time)
    headers = httpx2.Headers([(b"anthropic-ratelimit-tokens-reset", "30\u0661s".encode())])  # "301s" in utf-8
    assert reader(headers).get("tokens").reset_s == 301.0
    assert len(reader) == 0


anthropic_value = st.one_of(
    header_value,
    st.integers(-800 * 86400, 800 * 86400).map(
        lambda offset: datetime.fromtimestamp(1_800_000_000 + offset, tz=timezone.utc).isoformat()
    ),
    st.binary(max_size=8),
)
anthropic_name = st.sampled_from(
    [name for _, *names in ANTHROPIC_HEADERS for name in names] + ["retry-after", "x-other", "x-caf\u00e9".encode()]
)
repeated_reset = st.tuples(
    st.sampled_from([reset for *_, reset in ANTHROPIC_HEADERS]),
    st.sampled_from([-100, 0, 30, 500, 366 * 86400 + 60]).map(
        lambda offset: datetime.fromtimestamp(1_800_000_000 + offset, tz=timezone.utc).isoformat()
    )
    | st.sampled_from(["30s", "1e400", "-1"]),
)  # a few resets that repeat: kept, then read again later


@settings(deadline=None, max_examples=200)
@given(
    st.lists(st.lists(st.tuples(anthropic_name, anthropic_value) | repeated_reset, max_size=8), max_size=6), st.data()
)
def test_one_reader_over_many_responses_reads_each_as_a_fresh_parse(responses, data):
    """One reader, as an adapter keeps it: whatever it kept from earlier responses, each reads as parsed afresh."""
    reader = RateLimitReader(ANTHROPIC_HEADERS, parse_reset_time, size=4)
    now = 1_800_000_000.0
    for pairs in responses:
        try:
            headers = httpx2.Headers(pairs)
            expected_items = dict(headers.items())
        except Exception:  # a value httpx2 itself refuses never reaches an adapter
            continue
        now += data.draw(st.floats(-10.0, 1000.0))
        expected = fresh(expected_items, ANTHROPIC_HEADERS, lambda text, now=now: parse_reset_time(text, now=now))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(time, "time", lambda now=now: now)
            assert reader(headers) == expected
        assert len(reader) <= 4


def test_records_read_are_the_records_a_constructor_builds():
    """The reader builds its records without their frozen ``__init__`` (see `ratelimits._new_window`): they must be
    the same frozen records in every way a user can see."""
    limits = openai_reader()(httpx2.Headers({**OPENAI, "retry-after": "2"}))
    window = limits.get("tokens")
    expected = RateLimitWindow(kind="tokens", limit=30000.0, remaining=29850.0, reset_s=360.0)
    built = RateLimits(windows=limits.windows, retry_after_s=2.0)
    assert type(window) is RateLimitWindow
    assert type(limits) is RateLimits
    assert (window, hash(window), repr(window)) == (expected, hash(expected), repr(expected))
    assert (limits, hash(limits), repr(limits)) == (built, hash(built), repr(built))
    with pytest.raises(dataclasses.FrozenInstanceError):
        window.remaining = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.retry_after_s = None
    assert pickle.loads(pickle.dumps(limits)) == limits
    assert dataclasses.replace(window, remaining=1.0).remaining == 1.0
    assert dataclasses.asdict(window) == dataclasses.asdict(expected)
    assert window.used_fraction == expected.used_fraction


def test_records_of_another_layout_are_built_by_their_constructor():
    def slots_builder(record: type):
        """What `ratelimits._new_window` does, for ``record``."""

        class Fields:
            __slots__ = getattr(record, "__slots__", ())

        def build(kind: str, limit: float) -> object:
            built = Fields()
            built.kind = kind
            built.limit = limit
            built.__class__ = record
            return built

        return build

    @dataclasses.dataclass(frozen=True, slots=True)
    class Frozen:
        kind: str
        limit: float

    @dataclasses.dataclass(frozen=True)
    class WithoutSlots:
        kind: str
        limit: float

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        kind: str
        limit: float

    for record in (WithoutSlots, NotFrozen):
        assert ratelimits._if_same(slots_builder(record), record, "tokens", 1.0) is record
    fast = slots_builder(Frozen)
    assert ratelimits._if_same(fast, Frozen, "tokens", 1.0) is fast
    assert ratelimits._if_same(ratelimits._new_window, RateLimitWindow, "tokens", 1.0, 2.0, 3.0) is ratelimits._window


@settings(deadline=None, max_examples=200)
@given(
    st.lists(anthropic_name, max_size=10),
    st.lists(st.tuples(st.permutations(range(10)), st.lists(anthropic_value, min_size=10, max_size=10)), max_size=6),
)
def test_responses_whose_headers_come_in_a_known_order_read_as_a_fresh_parse(names, responses):
    """The same names in the same order (or another order) with new values: each response reads as a fresh parse."""
    reader = RateLimitReader(ANTHROPIC_HEADERS, parse_reset_time)
    now = 1_800_000_000.0
    for order, values in responses:
        pairs = [(names[i], values[i]) for i in order if i < len(names)]
        try:
            headers = httpx2.Headers(pairs)
            expected_items = dict(headers.items())
        except Exception:  # a value httpx2 itself refuses never reaches an adapter
            continue
        expected = fresh(expected_items, ANTHROPIC_HEADERS, lambda text: parse_reset_time(text, now=now))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(time, "time", lambda: now)
            assert reader(headers) == expected
            assert reader(httpx2.Headers(pairs)) == expected  # the same order again


def test_a_known_order_of_names_reads_each_response_s_own_values():
    reader = openai_reader()
    orders = [list(OPENAI), list(reversed(OPENAI)), [*OPENAI, "x-extra"]]
    for step in range(30):
        names = orders[step % 3]
        values = {**OPENAI, "x-extra": "1", "x-ratelimit-remaining-requests": str(step)}
        if step % 5 == 0:
            values["x-ratelimit-limit-tokens"] = "-1"  # rejected: unknown, whatever was there last time
        headers = httpx2.Headers([(name, values[name]) for name in names])
        limits = reader(headers)
        assert limits == fresh(headers)
        assert limits.get("requests").remaining == step


@pytest.mark.parametrize("kinds", [OPENAI_HEADERS, ANTHROPIC_HEADERS])
def test_empty_values_are_no_figures_and_no_rejections(caplog, kinds):
    reader = RateLimitReader(kinds, parse_reset_time if kinds is ANTHROPIC_HEADERS else parse_duration)
    headers = httpx2.Headers([(name, "") for _, *names in kinds for name in names])
    with caplog.at_level(logging.DEBUG, logger="tokenrate"):
        assert reader(headers) is None
    assert not caplog.records
    assert len(reader) == 0


def test_httpx_headers_read_as_httpx2_headers():
    """Groq's and Cerebras' SDKs answer with ``httpx`` headers, OpenAI's and Anthropic's with ``httpx2`` ones."""
    import httpx

    pairs = [*OPENAI.items(), ("X-RateLimit-Limit-Requests", "7"), ("retry-after-ms", "1500")]
    reader = openai_reader()
    limits = reader(httpx.Headers(pairs))
    assert limits == reader(httpx2.Headers(pairs)) == fresh(dict(httpx.Headers(pairs).items()))
    assert limits.retry_after_s == 1.5
    assert len(reader) == 3  # the tokens limit, two resets; "500, 7" (a repeated header joined) is no figure
