"""Prices from genai-prices: equal to what genai-prices computes itself, for the cases that matter."""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from cost_helpers import make_record

from tokenrate import pipeline
from tokenrate.cost import Pricer, price_record, set_pricer, unknown_cost_calls
from tokenrate.recording import ActiveCall
from tokenrate.records import CallInfo

genai_prices = pytest.importorskip("genai_prices")
from genai_prices import Usage, calc_price  # noqa: E402
from genai_prices.data_snapshot import get_snapshot  # noqa: E402

NOW = datetime.now(timezone.utc).timestamp()
WHEN = datetime.fromtimestamp(NOW, timezone.utc)


@pytest.fixture
def pricer():
    p = Pricer()
    set_pricer(p)
    yield p
    set_pricer(None)


def genai(usage: Usage, model: str, provider_id: str):
    return calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=WHEN)


def test_openai_gpt4o_with_cached_tokens(pricer):
    record = make_record("openai", "gpt-4o", started_unix=NOW, input=10_000, cache_read=4_000, output=500)
    expected = genai(Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=500), "gpt-4o", "openai")

    cost = pricer.cost(record)

    assert cost == pytest.approx(float(expected.total_price), rel=1e-12)
    # By hand from the per-MTok prices: input includes the cached tokens, which are billed at the cache price.
    p = expected.model_price
    by_hand = ((10_000 - 4_000) * p.input_mtok + 4_000 * p.cache_read_mtok + 500 * p.output_mtok) / Decimal(10**6)
    assert p.cache_read_mtok < p.input_mtok
    assert cost == pytest.approx(float(by_hand), rel=1e-12)


def test_anthropic_claude_sonnet_4_with_cache_read_write_and_web_search(pricer):
    record = make_record(
        "anthropic",
        "claude-sonnet-4",
        response_model="claude-sonnet-4-20250514",
        started_unix=NOW,
        input=10_000,
        cache_read=4_000,
        cache_write=2_000,
        output=500,
        tools={"web_search": 2},
    )
    usage = Usage(
        input_tokens=10_000, cache_read_tokens=4_000, cache_write_tokens=2_000, output_tokens=500, web_searches=2
    )
    expected = genai(usage, "claude-sonnet-4-20250514", "anthropic")

    cost = pricer.cost(record)

    assert cost == pytest.approx(float(expected.total_price), rel=1e-12)
    p = expected.model_price
    by_hand = (
        (10_000 - 4_000 - 2_000) * p.input_mtok
        + 4_000 * p.cache_read_mtok
        + 2_000 * p.cache_write_mtok
        + 500 * p.output_mtok
    ) / Decimal(10**6) + 2 * p.web_searches_kcount / Decimal(1000)
    assert cost == pytest.approx(float(by_hand), rel=1e-12)
    # The web searches are really in there.
    without = make_record(
        "anthropic",
        "claude-sonnet-4-20250514",
        started_unix=NOW,
        input=10_000,
        cache_read=4_000,
        cache_write=2_000,
        output=500,
    )
    assert cost - pricer.cost(without) == pytest.approx(2 * float(p.web_searches_kcount) / 1000)


def test_gemini_2_5_flash_with_cached_and_thought_tokens(pricer):
    record = make_record(
        "gcp.gemini", "gemini-2.5-flash", started_unix=NOW, input=10_000, cache_read=4_000, output=600, reasoning=100
    )
    usage = Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=600, output_reasoning_tokens=100)
    expected = genai(usage, "gemini-2.5-flash", "google")

    assert pricer.cost(record) == pytest.approx(float(expected.total_price), rel=1e-12)
    # Thoughts are billed as output: the same as 600 plain output tokens.
    plain = genai(Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=600), "gemini-2.5-flash", "google")
    assert pricer.cost(record) == pytest.approx(float(plain.total_price), rel=1e-12)


def test_tiered_price_above_the_threshold_matches_genai_prices(pricer):
    big = make_record("gcp.gemini", "gemini-2.5-pro", started_unix=NOW, input=300_000, output=1_000)
    small = make_record("gcp.gemini", "gemini-2.5-pro", started_unix=NOW, input=100_000, output=1_000)

    big_expected = genai(Usage(input_tokens=300_000, output_tokens=1_000), "gemini-2.5-pro", "google")
    small_expected = genai(Usage(input_tokens=100_000, output_tokens=1_000), "gemini-2.5-pro", "google")

    assert pricer.cost(big) == pytest.approx(float(big_expected.total_price), rel=1e-12)
    assert pricer.cost(small) == pytest.approx(float(small_expected.total_price), rel=1e-12)
    assert pricer.cost(big) / 3 > pricer.cost(small) * 1.2  # the higher tier applies to all tokens


def test_a_tiered_price_is_a_dot_product_below_its_first_tier_and_genai_prices_past_it(pricer, monkeypatch):
    """claude-sonnet-4-5 has a long-context tier (all tokens at the higher rate once input > 200k): calls below it
    take the linear path, calls past it genai-prices' own, and both equal genai-prices at the boundary."""
    from genai_prices import types

    from tokenrate.cost._genai import _linear_coefficients

    model_price = get_snapshot().find_provider_model("claude-sonnet-4-5", None, "anthropic", None)[1].prices
    assert isinstance(model_price, types.ModelPrice)
    tier_start = min(
        tier.start
        for value in vars(model_price).values()
        if isinstance(value, types.TieredPrices)
        for tier in value.tiers
    )
    coefficients, _, input_limit = _linear_coefficients(model_price, types)
    assert coefficients is not None
    assert input_limit == tier_start

    full_path_calls = []
    original = types.ModelInfo.calc_price
    monkeypatch.setattr(
        types.ModelInfo, "calc_price", lambda self, *a, **k: full_path_calls.append(1) or original(self, *a, **k)
    )
    for total_in, expect_full_path in ((1_000, False), (tier_start, False), (tier_start + 1, True)):
        usage = Usage(input_tokens=total_in, cache_read_tokens=total_in // 4, output_tokens=900)
        expected = float(genai(usage, "claude-sonnet-4-5", "anthropic").total_price)
        record = make_record(
            "anthropic", "claude-sonnet-4-5", started_unix=NOW, input=total_in, cache_read=total_in // 4, output=900
        )
        full_path_calls.clear()
        assert pricer.cost(record) == pytest.approx(expected, rel=1e-9), total_in
        assert bool(full_path_calls) is expect_full_path, total_in


OUR_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google": "gcp.gemini"}


def test_every_openai_anthropic_google_model_matches_genai_prices_on_random_usage(pricer):
    """The fast (linear) path and the full path agree with genai-prices for every model of three providers."""
    rng = random.Random(1234)
    snapshot = get_snapshot()
    checked = 0
    for provider in snapshot.providers:
        if provider.id not in OUR_PROVIDER:
            continue
        for model in provider.models:
            for _ in range(3):
                total_in = rng.randint(0, 400_000)
                cache_read = rng.randint(0, total_in // 2)
                cache_write = rng.randint(0, (total_in - cache_read) // 2)
                output = rng.randint(0, 20_000)
                reasoning = rng.randint(0, output)
                searches = rng.choice((0, 0, 1, 3))
                usage = Usage(
                    input_tokens=total_in,
                    output_tokens=output,
                    cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write,
                    output_reasoning_tokens=reasoning,
                    web_searches=searches,
                )
                try:
                    expected = float(genai(usage, model.id, provider.id).total_price)
                except (LookupError, ValueError):
                    expected = None
                record = make_record(
                    OUR_PROVIDER[provider.id],
                    model.id,
                    started_unix=NOW,
                    input=total_in,
                    output=output,
                    cache_read=cache_read,
                    cache_write=cache_write,
                    reasoning=reasoning,
                    tools={"web_search": searches} if searches else None,
                )
                got = pricer.cost(record)
                if expected is None:
                    assert got is None, model.id
                else:
                    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (provider.id, model.id)
                checked += 1
    assert checked > 150


@pytest.mark.parametrize(
    ("provider", "server", "model", "genai_provider"),
    [
        ("azure.ai.openai", None, "gpt-4o", "azure"),
        ("gcp.vertex_ai", None, "gemini-2.5-flash", "google"),
        ("aws.bedrock", None, "anthropic.claude-sonnet-4-20250514-v1:0", "aws"),
        ("openai", "openrouter.ai", "openai/gpt-4o", "openrouter"),  # the OpenAI SDK pointed at OpenRouter
        ("openai", "api.openai.com", "gpt-4o-mini", "openai"),
        ("groq", None, "llama-3.3-70b-versatile", "groq"),  # a name genai-prices knows as it is
        ("some.new.provider", None, "gpt-4o", None),  # unknown provider: genai-prices guesses from the model
    ],
)
def test_provider_mapping(pricer, provider, server, model, genai_provider):
    record = make_record(provider, model, server_address=server, started_unix=NOW, input=1_000, output=100)
    usage = Usage(input_tokens=1_000, output_tokens=100)
    if genai_provider is None:
        expected = calc_price(usage, model, genai_request_timestamp=WHEN)
    else:
        expected = genai(usage, model, genai_provider)
    assert pricer.cost(record) == pytest.approx(float(expected.total_price), rel=1e-12)


def test_response_model_first_then_request_model(pricer):
    both_known = make_record(
        "openai", "gpt-4o-mini", response_model="gpt-4o-2024-08-06", started_unix=NOW, input=1_000, output=100
    )
    deployment = make_record(
        "openai", "gpt-4o", response_model="acme-gpt4o-deployment-7", started_unix=NOW, input=1_000, output=100
    )
    usage = Usage(input_tokens=1_000, output_tokens=100)

    assert pricer.cost(both_known) == pytest.approx(float(genai(usage, "gpt-4o-2024-08-06", "openai").total_price))
    assert pricer.cost(deployment) == pytest.approx(float(genai(usage, "gpt-4o", "openai").total_price))
    assert pricer.cost(both_known) != pricer.cost(
        make_record("openai", "gpt-4o-mini", started_unix=NOW, input=1_000, output=100)
    )


def test_unknown_model_is_unknown_counted_and_warned_once(pricer, caplog):
    model = f"no-such-model-{uuid.uuid4().hex[:8]}"
    lookups = []
    backend = pricer._backend()
    original = backend._resolve_uncached

    def counting(*args):
        lookups.append(args)
        return original(*args)

    backend._resolve_uncached = counting
    caplog.set_level(logging.WARNING, logger="tokenrate")

    costs = [pricer.cost(make_record("openai", model, input=100, output=10)) for _ in range(3)]
    other = pricer.cost(make_record("anthropic", model, input=100, output=10))

    assert costs == [None, None, None]
    assert other is None
    assert pricer.unknown_cost_calls()[("openai", model)] == 3
    assert pricer.unknown_cost_calls()[("anthropic", model)] == 1
    warnings = [r for r in caplog.records if model in r.getMessage()]
    assert len(warnings) == 2  # once per (provider, model)
    assert "unknown cost (not 0)" in warnings[0].getMessage()
    assert len(lookups) == 2  # the miss is cached: one genai-prices lookup per (provider, model)
    assert unknown_cost_calls()[("openai", model)] == 3  # the module-level view of the same pricer


def test_a_call_without_a_model_name_is_unknown(pricer):
    record = make_record("openai", None, input=100, output=10)
    assert pricer.cost(record) is None
    assert pricer.unknown_cost_calls()[("openai", None)] == 1


@pytest.mark.parametrize(
    ("error_type", "status_code", "outcome", "expected"),
    [
        ("RateLimitError", 429, None, 0.0),  # the provider refused the request: not billed
        ("BadRequestError", 400, None, 0.0),
        ("InternalServerError", 500, None, 0.0),
        ("CallRejected", None, None, 0.0),  # never sent
        ("BudgetExceededError", None, None, 0.0),
        ("APITimeoutError", None, None, None),  # may have been processed and billed: unknown
        ("APIConnectionError", None, None, None),
        (None, 200, "closed", None),  # a stream closed before its usage arrived: tokens were produced
        (None, 200, "ok", None),  # success without usage: unknown, not free
    ],
)
def test_calls_without_usage(pricer, error_type, status_code, outcome, expected):
    record = make_record(
        "openai", "gpt-4o", error_type=error_type, status_code=status_code, outcome=outcome, started_unix=NOW
    )
    assert pricer.cost(record) == expected


def test_embeddings_report_only_input(pricer):
    record = make_record("openai", "text-embedding-3-small", operation="embeddings", started_unix=NOW, input=5_000)
    expected = genai(Usage(input_tokens=5_000), "text-embedding-3-small", "openai")
    assert pricer.cost(record) == pytest.approx(float(expected.total_price), rel=1e-12)
    assert pricer.cost(record) > 0


@pytest.mark.tokenrate_errors_expected
def test_usage_genai_prices_rejects_is_unknown_not_an_exception(pricer, caplog, swallowed_errors):
    # More cached tokens than input tokens: inconsistent, genai-prices refuses it; the cost is unknown.
    record = make_record("openai", "gpt-4o", started_unix=NOW, input=100, cache_read=500, output=10)
    caplog.set_level(logging.WARNING, logger="tokenrate")
    assert pricer.cost(record) is None
    assert swallowed_errors.places() == ["cost: genai-prices for openai gpt-4o"]


def test_price_record_enricher_in_the_pipeline(pricer):
    kept = []

    class Keep:
        def call_started(self, call):
            return None

        def retry(self, token, retry):
            return None

        def call_ended(self, token, record):
            kept.append(record)

    sink = Keep()
    pipeline.add_enricher(price_record)
    pipeline.add_local_sink(sink)
    try:
        call = ActiveCall(
            pipeline.Pipeline(None), CallInfo(provider="openai", operation="chat", request_model="gpt-4o")
        )
        call.usage = make_record("openai", "gpt-4o", input=2_000, output=300).usage
        call.finish()
    finally:
        pipeline.remove_local_sink(sink)
        pipeline.remove_enricher(price_record)
    (record,) = kept
    usage = Usage(input_tokens=2_000, output_tokens=300)
    expected = calc_price(usage, "gpt-4o", provider_id="openai")
    assert record.cost_usd == pytest.approx(float(expected.total_price), rel=1e-12)
    # Unknown stays None, and the record is passed through unchanged.
    unknown = make_record("openai", "no-such-model-enricher", input=1, output=1)
    assert price_record(unknown) is unknown


@pytest.mark.parametrize("hours", [0, 2, 12])
def test_dated_and_time_of_day_prices_follow_the_call_start(pricer, hours):
    """A price with dates or hours (deepseek's off-peak hours) is read at the call's start; others need no clock."""
    snapshot = get_snapshot()
    deepseek = next(p for p in snapshot.providers if p.id == "deepseek")
    model = next(m for m in deepseek.models if not isinstance(m.prices, genai_prices.types.ModelPrice))
    day = datetime.now(timezone.utc).replace(hour=hours, minute=5, second=0, microsecond=0)
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    expected = float(calc_price(usage, model.id, provider_id="deepseek", genai_request_timestamp=day).total_price)
    record = make_record("deepseek", model.id, started_unix=day.timestamp(), input=1_000_000, output=100_000)
    assert pricer.cost(record) == pytest.approx(expected, rel=1e-9)


def test_the_priced_record_is_the_record_with_its_cost(pricer):
    """`price_record` copies every field but the cost (checked field by field against dataclasses.replace)."""
    import dataclasses

    from tokenrate.records import RateLimits, RateLimitWindow, RetryRecord

    record = dataclasses.replace(
        make_record("openai", "gpt-4o", response_model="gpt-4o-2024-08-06", input=1_000, output=10, tools={"x": 1}),
        time_to_first_chunk_s=0.5,
        retries=(RetryRecord(info=CallInfo("openai", "chat"), attempt=1, status_code=429, reason="x", wait_s=1, at=2),),
        rate_limits=RateLimits((RateLimitWindow("requests", 1, 2, 3),), 4.0),
        status_code=200,
        attributes={"user.id": "u"},
        rate_limiter_wait_s=0.25,
    )
    priced = price_record(record)
    assert priced.cost_usd is not None
    assert priced == dataclasses.replace(record, cost_usd=priced.cost_usd)


def test_the_per_call_dot_product_equals_genai_prices_cost_to_the_float(pricer):
    """The per-model dot product (`linear_cost`) gives exactly the float `GenaiPrices.cost` gives from the call's
    vector, for every model of three providers and usages with and without parts, tools and unknown counts."""
    from tokenrate.cost.pricer import _LINEAR, _vector

    rng = random.Random(99)
    backend = pricer._backend()
    assert backend is not None
    compared = 0
    for provider in get_snapshot().providers:
        if provider.id not in OUR_PROVIDER:
            continue
        for model in provider.models:
            for _ in range(4):
                total_in = rng.choice((None, 0, rng.randint(1, 2_000), rng.randint(1, 300_000)))
                parts = [rng.choice((None, 0, rng.randint(0, total_in // 3))) if total_in else None for _ in "rw"]
                record = make_record(
                    OUR_PROVIDER[provider.id],
                    model.id,
                    started_unix=NOW,
                    input=total_in,
                    output=rng.choice((None, 0, rng.randint(1, 5_000))),
                    cache_read=parts[0],
                    cache_write=parts[1],
                    reasoning=rng.choice((None, 0, 7)),
                    tools=rng.choice((None, {"web_search": 2}, {"code_execution": 1, "web_search_requests": 1})),
                )
                if record.usage.input is None and record.usage.output is None:
                    continue
                got = pricer.cost(record)
                key = (record.info.provider, None, None, model.id)
                kind, found = pricer._resolved[key]
                if kind is not _LINEAR:
                    continue
                try:
                    expected = backend.cost(found.resolved, _vector(record), record.started_unix)
                except ValueError:
                    expected = None
                assert got == expected, (provider.id, model.id, record.usage)
                compared += 1
    assert compared > 300


def test_the_dot_product_rounds_to_picodollars_as_round_to_12_digits_does():
    """The dot product's cheap rounding returns exactly what ``round(x, 12)`` returns (genai-prices' own path
    rounds so), near halves and at every magnitude."""
    import math

    from tokenrate.cost._genai import LinearPrice, linear_cost
    from tokenrate.records import TokenUsage

    def round_to_picodollars(usd: float) -> float | None:
        # A price that is only its constant: the call costs exactly `usd`, rounded.
        return linear_cost(LinearPrice(None, usd, math.inf, *(0.0,) * 8), TokenUsage(input=1, output=1), {})  # type: ignore[arg-type]

    rng = random.Random(7)
    values = [rng.random() * 10 ** rng.uniform(-16, 5) for _ in range(50_000)]
    for _ in range(20_000):
        whole = rng.randint(0, 10 ** rng.randint(1, 16))
        for fraction in (0.0, 0.25, 0.5, 0.75, 0.2499999, 0.7500001, 0.999999):
            x = (whole + fraction) / 1e12
            values += [x, math.nextafter(x, 0), math.nextafter(x, math.inf)]
    values += [0.0, -1.5e-12, 2.5e-12, 1e300, math.inf]
    for x in values:
        rounded = round_to_picodollars(x)
        assert rounded == round(x, 12), x
        assert math.copysign(1, rounded) == math.copysign(1, round(x, 12)), x  # type: ignore[arg-type]


def test_new_price_data_is_used_from_the_next_call(pricer):
    """Prices resolved from one genai-prices snapshot are looked up again once another replaces it (what
    ``UpdatePrices`` does), so a changed price applies from the next call."""
    import copy

    from genai_prices import data_snapshot

    record = make_record("openai", "gpt-4o", started_unix=NOW, input=1_000, output=100)
    before = pricer.cost(record)
    changed = copy.deepcopy(get_snapshot())
    openai = next(p for p in changed.providers if p.id == "openai")
    model = openai.find_model("gpt-4o", all_providers=changed.providers)
    model.prices.input_mtok = model.prices.input_mtok * 2
    data_snapshot.set_custom_snapshot(changed)
    try:
        after = pricer.cost(record)
    finally:
        data_snapshot.set_custom_snapshot(None)
    expected = model.calc_price(Usage(input_tokens=1_000, output_tokens=100), openai, genai_request_timestamp=WHEN)
    assert after == pytest.approx(float(expected.total_price), rel=1e-12)
    assert after > before
