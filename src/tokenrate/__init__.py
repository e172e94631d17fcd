"""tokenrate: OpenTelemetry instrumentation for LLM SDKs — tokens by type, throttling, rate limits, cost.

Zero-code: ``opentelemetry-instrument python app.py`` (entry points ``tokenrate_openai``,
``tokenrate_anthropic``, ``tokenrate_google_genai``, ``tokenrate_bedrock``). In code::

    import tokenrate
    tokenrate.instrument()          # every supported SDK that is installed
    ...
    print(tokenrate.snapshot())     # the local view: TPM, RPM, totals, throttling, cost

    with tokenrate.attributes(user_id="u-42", feature="search"):   # who/what the calls inside are for
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from tokenrate.attribution.context import attributes

if TYPE_CHECKING:
    from tokenrate.view import Snapshot


def _instrumentor(name: str) -> Any:
    """The instrumentor of SDK ``name`` (a singleton), or ``None`` when it cannot be imported."""
    from tokenrate.sdks import sdk_named

    try:
        return sdk_named(name).instrumentor_class()()
    except ModuleNotFoundError:
        return None


def _not_installed(instrumentor: Any) -> bool:
    """True when the instrumentor's SDK is absent altogether (an installed but unsupported version is not this)."""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    return conflict is not None and not (getattr(conflict, "found", None) or getattr(conflict, "found_any", None))


def instrument(
    sdks: Iterable[str] | None = None,
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
) -> list[str]:
    """Instrument the installed SDKs (or just ``sdks``: ``openai``, ``anthropic``, ``google-genai``, ``botocore``).

    ``botocore`` is boto3's Amazon Bedrock client (``bedrock-runtime``); other AWS services are never recorded.

    Returns the names of the SDKs that are now instrumented. SDKs that are not installed, or whose installed
    version is outside the supported range, are skipped: without ``sdks``, an SDK that is not installed at all is
    skipped silently (DEBUG log); one named in ``sdks`` but missing, or installed at an unsupported version, is
    logged as an error by OpenTelemetry. Safe to call more than once: a later call with a ``tracer_provider`` or
    ``meter_provider`` re-binds the SDKs already instrumented to it (calls in flight finish on the old one), so
    the last providers given win.
    """
    from tokenrate.sdks import BY_NAME, sdk_named

    enabled = []
    for name in BY_NAME if sdks is None else sdks:
        sdk_named(name)  # an unknown name is a ValueError
        instrumentor = _instrumentor(name)
        if instrumentor is None:
            continue
        if sdks is None and not instrumentor.is_instrumented_by_opentelemetry and _not_installed(instrumentor):
            logging.getLogger("tokenrate").debug("tokenrate: %s is not installed; not instrumenting it", name)
            continue
        if not instrumentor.is_instrumented_by_opentelemetry:
            kwargs = {}
            if tracer_provider is not None:
                kwargs["tracer_provider"] = tracer_provider
            if meter_provider is not None:
                kwargs["meter_provider"] = meter_provider
            instrumentor.instrument(**kwargs)
        elif tracer_provider is not None or meter_provider is not None:
            instrumentor.rebind(tracer_provider=tracer_provider, meter_provider=meter_provider)
        if instrumentor.is_instrumented_by_opentelemetry and instrumentor.active:
            enabled.append(name)
    return enabled


def uninstrument() -> None:
    """Remove every tokenrate hook; the SDKs behave exactly as if tokenrate had never been imported."""
    from tokenrate.sdks import BY_NAME

    for name in BY_NAME:
        instrumentor = _instrumentor(name)
        if instrumentor is not None and instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def snapshot() -> Snapshot:
    """The local view now: rolling TPM/RPM, session totals, throttling, rate limits, cost (immutable, JSON-able)."""
    from tokenrate.view import snapshot as _snapshot

    return _snapshot()


def reset() -> None:
    """Start the local view's session over (totals, windows, peaks)."""
    from tokenrate.view import reset as _reset

    _reset()


__all__ = ["__version__", "attributes", "instrument", "reset", "snapshot", "uninstrument"]
