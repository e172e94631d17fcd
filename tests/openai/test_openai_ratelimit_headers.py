"""OpenAI's rate-limit headers, exactly as the API sends them, parsed into the figures the record carries.

Every reset format OpenAI uses (Go durations) is checked against the seconds it means, so a unit read wrongly
(``m`` as seconds, ``s`` as milliseconds) fails here and not only in an end-to-end test.
"""

from __future__ import annotations

import openai
import pytest
from wire_bodies import openai_chat_completion

from tokenrate.simulator import Step

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@pytest.mark.parametrize(
    ("reset", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("120ms", 0.12), ("0.5", 0.5), ("17ms", 0.017)],
)
def test_reset_durations_are_the_seconds_they_say(sim, telemetry, records, reset, seconds):
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": reset,
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": reset,
    }
    sim.script(Step.raw(openai_chat_completion(USAGE), headers=headers))
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")

    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    limits = records.last.rate_limits
    assert limits.get("requests").reset_s == pytest.approx(seconds)
    assert limits.get("tokens").reset_s == pytest.approx(seconds)
    assert (limits.get("requests").limit, limits.get("requests").remaining) == (500, 499)
    assert (limits.get("tokens").limit, limits.get("tokens").remaining) == (30000, 29000)
    for kind in ("requests", "tokens"):
        (point,) = telemetry.points("tokenrate.ratelimit.reset", tokenrate__ratelimit__kind=kind)
        assert point.value == pytest.approx(seconds)
