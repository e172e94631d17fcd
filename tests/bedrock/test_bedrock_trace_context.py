"""Bedrock requests carry tokenrate's span as their W3C trace context, written after SigV4 signing.

Proxies rewrite trace headers hop by hop, so a signed ``traceparent`` would fail the signature check there.
botocore 1.44 never signs trace headers; the oldest supported botocore, 1.37.24, signs every header present when
it signs but four (``expect``, ``transfer-encoding``, ``user-agent``, ``x-amzn-trace-id``). The tests sign as that
one does, so a header written before signing would show in ``SignedHeaders``. Every SDK, retries and
``OTEL_PROPAGATORS=none`` included: ``tests/adversarial/test_trace_propagation.py``.
"""

from __future__ import annotations

from typing import Any

import botocore.auth
import pytest
from bedrock_support import CLAUDE, HI

OLDEST_SUPPORTED_UNSIGNED = ["expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"]
"""``botocore.auth.SIGNED_HEADERS_BLACKLIST`` in botocore 1.37.24."""
THEIRS = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def signing_as_the_oldest_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", OLDEST_SUPPORTED_UNSIGNED)


def signed_headers(headers: dict[str, str]) -> list[str]:
    """The ``SignedHeaders`` list of a SigV4 ``Authorization`` header."""
    return headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


def test_the_trace_context_is_written_after_signing(client, sim, telemetry, signing_as_the_oldest_botocore):
    client.converse(modelId=CLAUDE, messages=HI)
    (request,) = sim.served
    (span,) = telemetry.spans()
    trace_id, span_id, flags = span.context.trace_id, span.context.span_id, span.context.trace_flags
    assert request.headers["traceparent"] == f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"
    assert "content-type" in signed_headers(request.headers)  # signing as 1.37.24: any other header is signed
    assert "traceparent" not in signed_headers(request.headers)


def test_a_trace_header_already_there_is_left_as_it_is(client, sim, telemetry, signing_as_the_oldest_botocore):
    """Written by something else before signing (so signed): a changed value would break the signature."""

    def write_theirs(request: Any, **_: Any) -> None:
        request.headers["traceparent"] = THEIRS

    client.meta.events.register("before-sign.bedrock-runtime.Converse", write_theirs)
    client.converse(modelId=CLAUDE, messages=HI)
    (request,) = sim.served
    assert request.headers["traceparent"] == THEIRS
    assert "traceparent" in signed_headers(request.headers)
    assert len(telemetry.spans()) == 1
