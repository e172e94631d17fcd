"""Rate-limit and retry-after headers out of range, through the real openai SDK: unknown, never passed on."""

from __future__ import annotations

import math

import openai
import pytest
from wire_bodies import openai_chat_completion

from tokenrate.provider_numbers import MAX_SECONDS
from tokenrate.simulator import Step

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def openai_client(sim, telemetry):
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-remaining-tokens": "-5", "x-ratelimit-limit-tokens": "1000"}, (1000, None, None)),
        ({"x-ratelimit-limit-tokens": "1e400", "x-ratelimit-remaining-tokens": "9"}, (None, 9, None)),
        ({"x-ratelimit-limit-tokens": "nan", "x-ratelimit-reset-tokens": "6m0s"}, (None, None, 360.0)),
        ({"x-ratelimit-limit-tokens": "10", "x-ratelimit-reset-tokens": f"{int(MAX_SECONDS) + 1}s"}, (10, None, None)),
        ({"x-ratelimit-limit-tokens": "10", "x-ratelimit-reset-tokens": "-3s"}, (10, None, None)),
        ({"x-ratelimit-limit-tokens": "10", "x-ratelimit-reset-tokens": "1" * 310 + "s"}, (10, None, None)),
    ],
    ids=["negative-remaining", "infinite-limit", "nan-limit", "reset-over-a-year", "negative-reset", "311-chars"],
)
def test_rate_limit_figures_out_of_range_are_unknown(openai_client, sim, records, headers, expected):
    body = openai_chat_completion(usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    sim.script(Step.raw(body, headers=headers))

    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    window = records.last.rate_limits.get("tokens")
    assert (window.limit, window.remaining, window.reset_s) == expected
    assert all(
        value is None or (math.isfinite(value) and value >= 0)
        for value in (window.limit, window.remaining, window.reset_s)
    )


@pytest.mark.parametrize("retry_after", ["1e999", "-4", "nan", str(10**400)])
def test_retry_after_out_of_range_is_unknown(openai_client, sim, records, retry_after):
    sim.script(
        Step.raw(
            '{"error": {"message": "slow down", "type": "rate_limit"}}',
            status=429,
            headers={"retry-after": retry_after},
        )
    )

    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    limits = records.last.rate_limits
    assert limits is None or limits.retry_after_s is None
    assert records.last.status_code == 429
