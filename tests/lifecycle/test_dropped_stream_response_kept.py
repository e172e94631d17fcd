"""A stream dropped mid-way is abandoned even when the user still holds its HTTP response.

The response then outlives the stream, so its collection cannot say "dropped": the SDK's stream generator, closed
as it is collected, closes the response in its ``finally``, which must not read as the user's ``close()``
(whichever of the stream's generators the collection closes first).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from lifecycle_clients import make_client

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _create(client: Any, sdk: str) -> Any:
    if sdk == "openai":
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    return client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sync_stream_dropped_with_its_response_kept_is_abandoned(sdk, sim, telemetry, records):
    stream = _create(make_client(sdk, sim, telemetry), sdk)
    response = stream.response
    for _ in stream:
        break
    del stream
    gc.collect()

    assert [record.outcome for record in records.calls] == ["abandoned"]
    response.close()
    assert len(records.calls) == 1


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_async_stream_dropped_with_its_response_kept_is_abandoned(sdk, sim, telemetry, records):
    async def scenario() -> None:
        stream = await _create(make_client(sdk, sim, telemetry, is_async=True), sdk)
        response = stream.response
        async for _ in stream:
            break
        del stream
        for _ in range(3):  # each collection lets asyncio close (then free) the next generators of the chain
            gc.collect()
            for _ in range(5):
                await asyncio.sleep(0.01)
        assert [record.outcome for record in records.calls] == ["abandoned"]
        await response.aclose()

    asyncio.run(scenario())
    assert len(records.calls) == 1
