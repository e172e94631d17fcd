"""Reading a stream item by item raises no exception in tokenrate's code.

An exception raised and caught on every item costs microseconds, more than all else tokenrate does per item: the
anthropic SDK reads ``response.stream.stream_observer`` before handing out each event, and tokenrate's body
observer once answered that through ``__getattr__``, raising AttributeError (caught by the SDK's ``getattr``
default) on every event. A trace function sees every exception raised in a Python frame, caught or not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from lifecycle_clients import make_client

import tokenrate

MESSAGES = [{"role": "user", "content": "Say hello"}]
TOKENRATE_SOURCES = str(Path(tokenrate.__file__).parent)


def _stream(client: Any, sdk: str) -> Any:
    if sdk == "openai":
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    return client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_no_exception_is_raised_in_tokenrate_per_stream_item(sdk, sim, telemetry, records):
    stream = _stream(make_client(sdk, sim, telemetry), sdk)
    raised: list[str] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "exception" and frame.f_code.co_filename.startswith(TOKENRATE_SOURCES):
            raised.append(f"{arg[0].__name__} in {frame.f_code.co_name}")
        return local

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(TOKENRATE_SOURCES) else None

    sys.settrace(trace)
    try:
        items = [next(stream) for _ in range(3)]
    finally:
        sys.settrace(None)
    list(stream)

    assert len(items) == 3
    assert raised == []
    assert [record.outcome for record in records.calls] == ["ok"]
