"""Attributes on real SDK calls (against the simulator): on records and spans always, on metrics when allow-listed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import openai
import pytest

import tokenrate
from tokenrate import attribution
from tokenrate.simulator import Step, UsagePlan

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def fresh_configuration() -> Iterator[None]:
    attribution.configure()
    yield
    attribution.configure_from_env(force=True)


@pytest.fixture
def client(sim, telemetry):
    sim.usage = UsagePlan(input=10, output=5)
    with openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=2) as c:
        yield c


def chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_record_and_span_carry_the_attributes_metrics_do_not_by_default(client, telemetry, records):
    with tokenrate.attributes({"tenant.id": "acme"}, user_id="u-1", feature="search"):
        chat(client)
    chat(client)  # outside: nothing

    expected = {"tenant.id": "acme", "user.id": "u-1", "tokenrate.feature": "search"}
    assert [dict(r.attributes) for r in records.calls] == [expected, {}]
    first, second = telemetry.spans()
    assert {k: first.attributes[k] for k in expected} == expected
    assert not set(expected) & set(second.attributes)
    for points in telemetry.collect().values():
        for point in points:
            assert not set(expected) & set(point.attributes)


def test_allow_listed_keys_reach_every_call_metric_and_retry_metric(client, sim, telemetry):
    attribution.configure(metric_attributes=("user.id",))
    sim.script(Step.rate_limited(retry_after=0), Step.ok())
    with tokenrate.attributes(user_id="u-1", feature="not-listed"):
        chat(client)

    for name in ("tokenrate.requests", "tokenrate.usage.tokens", "tokenrate.retries", "tokenrate.throttle.events"):
        points = telemetry.points(name)
        assert points, name
        assert {p.attributes.get("user.id") for p in points} == {"u-1"}, name
        assert all("tokenrate.feature" not in p.attributes for p in points), name
    assert telemetry.total("tokenrate.usage.tokens", user__id="u-1", gen_ai__token__type="input") == 10


def test_cardinality_guard_on_metrics_spans_keep_the_real_values(client, telemetry, records, caplog):
    attribution.configure(metric_attributes=("user.id",), metric_attribute_limit=2)
    for user in ("a", "b", "c", "d"):
        with tokenrate.attributes(user_id=user):
            chat(client)

    assert {p.attributes["user.id"]: p.value for p in telemetry.points("tokenrate.requests")} == {
        "a": 1,
        "b": 1,
        "_other": 2,
    }
    assert [span.attributes["user.id"] for span in telemetry.spans()] == ["a", "b", "c", "d"]
    assert [r.attributes["user.id"] for r in records.calls] == ["a", "b", "c", "d"]
    assert caplog.text.count("TOKENRATE_METRIC_ATTRIBUTE_LIMIT") == 1


def test_a_stream_keeps_the_attributes_it_started_with(client, records):
    with tokenrate.attributes(user_id="u-stream"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with tokenrate.attributes(user_id="someone-else"):
        for _ in stream:
            pass
    assert records.last.attributes == {"user.id": "u-stream"}


def test_concurrent_async_calls_each_keep_their_user(sim, telemetry, records):
    sim.usage = UsagePlan(input=10, output=5)

    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test") as aclient:

            async def one(user: str) -> None:
                with tokenrate.attributes(user_id=user):
                    await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

            await asyncio.gather(*(one(f"u{i}") for i in range(12)))

    asyncio.run(main())
    assert sorted(r.attributes["user.id"] for r in records.calls) == sorted(f"u{i}" for i in range(12))
    assert sorted(s.attributes["user.id"] for s in telemetry.spans()) == sorted(f"u{i}" for i in range(12))


def test_every_sdk_carries_them(sim, telemetry, records):
    with tokenrate.attributes(feature="all-sdks"):
        with anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x") as claude:
            claude.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES)
        genai = pytest.importorskip("google.genai", reason="google-genai 3.x needs Python >= 3.11")
        types = pytest.importorskip("google.genai.types")
        gemini = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=sim.gemini_base_url))
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert [(r.info.provider, r.attributes.get("tokenrate.feature")) for r in records.calls] == [
        ("anthropic", "all-sdks"),
        ("gcp.gemini", "all-sdks"),
    ]
