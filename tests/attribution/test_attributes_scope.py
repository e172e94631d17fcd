"""`tokenrate.attributes`: blocks and decorators, nesting, asyncio tasks, threads, Baggage, value rules."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context, propagate

import tokenrate
from tokenrate import attribution
from tokenrate.attribution import MAX_ATTRIBUTES, MAX_VALUE_LEN, current_attributes


@pytest.fixture(autouse=True)
def fresh_configuration() -> Iterator[None]:
    attribution.configure()
    yield
    attribution.configure_from_env(force=True)


def now() -> dict[str, str]:
    return dict(current_attributes())


def test_shortcuts_set_the_standard_keys_and_a_mapping_any_key():
    outer = tokenrate.attributes({"tenant.id": "acme"}, user_id="u-1", conversation_id="c-9", agent="planner")
    with outer, tokenrate.attributes(feature="search"):
        assert now() == {
            "tenant.id": "acme",
            "user.id": "u-1",
            "gen_ai.conversation.id": "c-9",
            "gen_ai.agent.name": "planner",
            "tokenrate.feature": "search",
        }
    assert now() == {}


def test_nested_blocks_merge_inner_wins_and_none_removes_a_key():
    with tokenrate.attributes(user_id="outer", feature="chat"):
        with tokenrate.attributes({"user.id": "inner", "tokenrate.feature": None}):
            assert now() == {"user.id": "inner"}
        assert now() == {"user.id": "outer", "tokenrate.feature": "chat"}


def test_one_scope_object_reused_and_left_on_an_exception():
    scope = tokenrate.attributes(user_id="u")

    def work() -> None:
        with scope:
            with scope:
                assert now() == {"user.id": "u"}
            assert now() == {"user.id": "u"}
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        work()
    assert now() == {}


def test_values_become_capped_strings_and_keys_must_be_strings():
    with tokenrate.attributes({"n": 42, "long": "x" * (MAX_VALUE_LEN + 50)}, user_id=7):
        values = now()
    assert values["n"] == "42"
    assert values["user.id"] == "7"
    assert len(values["long"]) == MAX_VALUE_LEN
    with pytest.raises(TypeError):
        tokenrate.attributes({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        tokenrate.attributes([("user.id", "x")])  # type: ignore[arg-type]


def test_attributes_per_call_are_capped(caplog):
    with tokenrate.attributes({f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 5)}):
        assert len(now()) == MAX_ATTRIBUTES
    assert "attributes on a call" in caplog.text


def test_decorator_on_sync_and_async_functions():
    @tokenrate.attributes(feature="sync")
    def work(x):
        return x, now()

    @tokenrate.attributes(feature="async")
    async def awork(x):
        await asyncio.sleep(0)
        return x, now()

    assert work(1) == (1, {"tokenrate.feature": "sync"})
    assert asyncio.run(awork(2)) == (2, {"tokenrate.feature": "async"})
    assert work.__name__ == "work"
    assert now() == {}


def test_decorating_a_generator_is_refused():
    with pytest.raises(TypeError, match="generator"):

        @tokenrate.attributes(feature="x")
        def gen():
            yield 1


def test_asyncio_tasks_keep_their_own_attributes():
    async def handle(user: str) -> dict[str, str]:
        async with tokenrate.attributes(user_id=user):
            await asyncio.sleep(0.01)  # the other tasks run their blocks meanwhile
            inner = asyncio.create_task(asyncio.sleep(0, result=None))
            await inner
            return now()

    async def main() -> list[dict[str, str]]:
        return await asyncio.gather(*(handle(f"u{i}") for i in range(20)))

    assert asyncio.run(main()) == [{"user.id": f"u{i}"} for i in range(20)]


def test_copied_context_carries_attributes_into_a_thread_and_a_plain_thread_does_not():
    seen: dict[str, dict[str, str]] = {}
    with tokenrate.attributes(user_id="u-thread"):
        ctx = contextvars.copy_context()
        copied = threading.Thread(target=ctx.run, args=(lambda: seen.setdefault("copied", now()),))
        plain = threading.Thread(target=lambda: seen.setdefault("plain", now()))
        copied.start()
        plain.start()
        copied.join()
        plain.join()
    assert seen == {"copied": {"user.id": "u-thread"}, "plain": {}}


def test_baggage_keys_are_copied_and_a_block_wins():
    attribution.configure(baggage_keys=("user.id", "tenant.id"))
    carrier = {"baggage": "user.id=u-remote,tenant.id=acme,other=ignored"}
    token = context.attach(propagate.extract(carrier))  # what a server instrumentation does per request
    try:
        assert now() == {"user.id": "u-remote", "tenant.id": "acme"}
        with tokenrate.attributes(user_id="u-local"):
            assert now() == {"user.id": "u-local", "tenant.id": "acme"}
    finally:
        context.detach(token)
    assert now() == {}


def test_baggage_is_ignored_unless_its_keys_are_listed():
    token = context.attach(baggage.set_baggage("user.id", "u-remote"))
    try:
        assert now() == {}
    finally:
        context.detach(token)


def test_environment_configuration(monkeypatch):
    monkeypatch.setenv(attribution.ENV_BAGGAGE_KEYS, " user.id , tenant.id,,user.id")
    monkeypatch.setenv(attribution.ENV_METRIC_ATTRIBUTES, "tokenrate.feature")
    monkeypatch.setenv(attribution.ENV_METRIC_ATTRIBUTE_LIMIT, "3")
    attribution.configure_from_env(force=True)
    assert attribution.baggage_keys() == ("user.id", "tenant.id")
    policy = attribution.metric_policy()
    assert (policy.keys, policy.limit) == (("tokenrate.feature",), 3)

    attribution.configure(metric_attributes=("user.id",))  # in code: wins over the environment
    attribution.configure_from_env()
    assert attribution.metric_policy().keys == ("user.id",)


def test_a_bad_limit_falls_back_to_the_default(monkeypatch, caplog):
    monkeypatch.setenv(attribution.ENV_METRIC_ATTRIBUTE_LIMIT, "0")
    attribution.configure_from_env(force=True)
    assert attribution.metric_policy().limit == attribution.DEFAULT_LIMIT
    assert attribution.ENV_METRIC_ATTRIBUTE_LIMIT in caplog.text


def test_cardinality_guard_admits_limit_values_per_key_then_other(caplog):
    policy = attribution.MetricAttributePolicy(("user.id", "tokenrate.feature"), limit=2)
    picked = [policy.pick({"user.id": f"u{i}", "tokenrate.feature": "f", "x": "y"}) for i in range(4)]
    assert [dict(p)["user.id"] for p in picked] == ["u0", "u1", "_other", "_other"]
    assert all(dict(p)["tokenrate.feature"] == "f" for p in picked)
    assert policy.pick({"user.id": "u1"}) == (("user.id", "u1"),)  # a value already admitted stays itself
    assert policy.distinct_values() == {"user.id": 2, "tokenrate.feature": 1}
    assert caplog.text.count("reached 2 distinct values") == 1
