"""Sending tokenrate's span as the trace context of each request the SDK sends for a recorded call.

A gateway, a proxy or the provider's own tracing links a request to the caller's trace through the W3C
``traceparent`` header. tokenrate's span is the call's span, so it is the one to propagate: its context is
written into each attempt's headers by the *global* propagator (``OTEL_PROPAGATORS``; W3C trace context and
baggage by default, nothing with ``none``), never a propagator of tokenrate's choosing. An HTTP-client
instrumentation (httpx, aiohttp) still nests its own span under tokenrate's and writes that one instead, as
it would for any parent span.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from opentelemetry import propagate
from opentelemetry.propagators.textmap import Setter, default_setter

from tokenrate._safety import report

Headers = MutableMapping[str, str]


def inject_trace_context(headers: Headers, setter: Setter[Headers] = default_setter) -> None:
    """Write the current context (tokenrate's span, current while the SDK works on a call) into ``headers``."""
    try:
        propagate.inject(headers, setter=setter)
    except Exception as exc:
        report("trace context propagation", exc)


class AddIfAbsentSetter(Setter[Headers]):
    """For headers kept as an ``email.message.Message`` (botocore's ``HTTPHeaders``), where assigning a name adds
    one more header. A trace header already there is left as it is: something else (another instrumentation, the
    user) wrote it, perhaps before the request was signed, and a changed or second value would break the signature.
    """

    def set(self, carrier: Headers, key: str, value: str) -> None:
        if key not in carrier:
            carrier[key] = value


add_if_absent = AddIfAbsentSetter()
