"""Anthropic's rate-limit headers (RFC 3339 reset times) parsed into seconds from when the answer arrived."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import anthropic
import pytest
from wire_bodies import anthropic_message

from tokenrate.simulator import Step

USAGE = {"input_tokens": 3, "output_tokens": 2}


def rfc3339(moment: datetime, *, zulu: bool) -> str:
    text = moment.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if zulu else text


@pytest.mark.parametrize(("ahead_s", "zulu"), [(0, True), (1, True), (59, True), (360, False), (3723, True)], ids=str)
def test_reset_times_are_seconds_from_the_answer(sim, telemetry, records, ahead_s, zulu):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    reset = now + timedelta(seconds=ahead_s)
    headers = {}
    for name in ("requests", "tokens", "input-tokens", "output-tokens"):
        headers[f"anthropic-ratelimit-{name}-limit"] = "4000"
        headers[f"anthropic-ratelimit-{name}-remaining"] = "3999"
        headers[f"anthropic-ratelimit-{name}-reset"] = rfc3339(reset, zulu=zulu)
    sim.script(Step.raw(anthropic_message(USAGE), headers=headers))
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test")

    before = time.time()
    client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    after = time.time()

    # The reset is counted from the moment the answer was read, somewhere between `before` and `after`.
    earliest = max(0.0, reset.timestamp() - after)
    latest = max(0.0, reset.timestamp() - before)
    windows = records.last.rate_limits.windows
    assert sorted(w.kind for w in windows) == ["input_tokens", "output_tokens", "requests", "tokens"]
    for window in windows:
        assert (window.limit, window.remaining) == (4000, 3999)
        assert earliest <= window.reset_s <= latest
