"""A call the user cancelled (Ctrl-C, task cancellation) is ``cancelled``: a request, not an error.

On the span: ``tokenrate.call.outcome=cancelled``, no ``error.type``, status left UNSET (the call did not fail;
the caller stopped waiting). In metrics: one ``tokenrate.requests`` without ``error.type``. In the view and the
summary: counted in requests and in ``cancelled``, never in errors; without usage its cost is unknown, and the
summary says why (no usage), not that the model lacks a price.
"""

from __future__ import annotations

import asyncio
import io
import re
import signal
import threading

import openai
import pytest
from opentelemetry.trace import StatusCode

from tokenrate.pipeline import Pipeline, add_local_sink, remove_local_sink
from tokenrate.recording import OUTCOME_CANCELLED, ActiveCall, is_cancellation
from tokenrate.records import CallInfo
from tokenrate.simulator import Step
from tokenrate.view import View, render_summary


class Cancelled(BaseException):
    """Named like trio's cancellation exception: recognised by its name, trio is not imported."""


@pytest.mark.parametrize(
    "error",
    [KeyboardInterrupt(), asyncio.CancelledError(), GeneratorExit(), Cancelled()],
    ids=lambda e: type(e).__name__,
)
def test_a_cancellation_ends_the_call_as_cancelled_without_an_error_type(error):
    pipeline = Pipeline(None)
    call = ActiveCall(pipeline, CallInfo(provider="openai", operation="chat", request_model="gpt-4o-mini"))
    record = call.finish(error=error)
    assert is_cancellation(error)
    assert record is not None
    assert record.outcome == OUTCOME_CANCELLED
    assert record.error_type is None


def test_a_real_error_stays_an_error():
    pipeline = Pipeline(None)
    call = ActiveCall(pipeline, CallInfo(provider="openai", operation="chat"))
    record = call.finish(error=ValueError("boom"))
    assert record.outcome == "error"
    assert record.error_type == "ValueError"
    assert not is_cancellation(ValueError())


def _assert_cancelled_everywhere(telemetry, records, view: View) -> None:
    assert [r.outcome for r in records.calls] == [OUTCOME_CANCELLED]
    assert records.last.error_type is None
    (span,) = telemetry.spans()
    assert span.attributes["tokenrate.call.outcome"] == "cancelled"
    assert "error.type" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET
    (point,) = telemetry.points("tokenrate.requests")
    assert point.value == 1
    assert "error.type" not in point.attributes
    snap = view.snapshot()
    assert (snap.requests, snap.errors, snap.cancelled) == (1, 0, 1)
    assert snap.errors_by_type == ()


async def test_a_cancelled_asyncio_task_is_a_cancelled_call(telemetry, records, sim):
    sim.script(Step.delay(30))
    view = View(budget_provider=None)  # sees the same record stream as telemetry
    add_local_sink(view)
    try:
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
        task = asyncio.create_task(
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        )
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        remove_local_sink(view)
    _assert_cancelled_everywhere(telemetry, records, view)


def test_ctrl_c_during_a_call_is_a_cancelled_call(telemetry, records, sim):
    sim.script(Step.delay(30))
    view = View(budget_provider=None)
    add_local_sink(view)
    main = threading.get_ident()
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT))  # a real Ctrl-C, to this thread
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    # Python's own Ctrl-C handler, even when the test run inherited an ignored SIGINT (a background job).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
        remove_local_sink(view)
    _assert_cancelled_everywhere(telemetry, records, view)


def test_summary_says_cancelled_not_error_and_why_the_cost_is_unknown():
    view = View(budget_provider=None)
    pipeline = Pipeline(None)
    add_local_sink(view)
    try:
        call = ActiveCall(pipeline, CallInfo(provider="openai", operation="chat", request_model="gpt-4o-mini"))
        call.finish(error=KeyboardInterrupt())
    finally:
        remove_local_sink(view)
    out = io.StringIO()
    render_summary(view.snapshot(), out)
    text = out.getvalue()
    assert "1 cancelled" in text
    assert re.search(r"^  errors\s+0$", text, re.MULTILINE), text
    assert "KeyboardInterrupt" not in text
    assert "without usage" in text
    assert "without a price" not in text
