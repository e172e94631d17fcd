"""Contract tests: every botocore hook point tokenrate's Bedrock adapter uses exists on the installed botocore, with
the parameters and the wiring it relies on.

If a botocore release moves one, these fail loudly here; in users' apps the hook is skipped with a warning and the
rest keeps working (e.g. calls and tokens without throttle data).
"""

from __future__ import annotations

import importlib.metadata
import inspect
from typing import Any

import botocore.endpoint
import botocore.retries.adaptive
import botocore.retries.standard
import wrapt
from bedrock_support import CLAUDE, HI, bedrock_client, isolated_aws_env  # noqa: F401 - isolated_aws_env: autouse
from opentelemetry.instrumentation.utils import unwrap

import tokenrate
from tokenrate.pipeline import Pipeline
from tokenrate.providers.bedrock import SERVICE, STREAM_KEYS, BedrockHooks
from tokenrate.simulator import Step

EXPECTED_TARGETS = {
    "botocore.client.BaseClient._make_api_call": ("operation_name", "api_params"),
    "botocore.endpoint.Endpoint._needs_retry": (
        "attempts",
        "operation_model",
        "request_dict",
        "response",
        "caught_exception",
    ),
    "botocore.retries.standard.RetryPolicy.compute_retry_delay": ("context",),
    "botocore.retryhandler.RetryHandler.__call__": ("attempts", "response", "caught_exception"),
    "botocore.retries.bucket.TokenBucket.acquire": ("amount", "block"),
    "botocore.endpoint.Endpoint.prepare_request": ("request",),
}


def test_every_hook_point_exists_with_the_expected_parameters() -> None:
    hooks = BedrockHooks(Pipeline(None)).hooks()
    version = importlib.metadata.version("botocore")
    assert {hook.target: hook.expected_parameters for hook in hooks} == EXPECTED_TARGETS
    problems = {hook.target: hook.check() for hook in hooks}
    assert {target: p for target, p in problems.items() if p} == {}, f"botocore {version} moved a hooked method"


def test_instrumenting_applies_every_hook_and_uninstrumenting_leaves_botocore_as_it_was() -> None:
    from tokenrate.instrumentation.bedrock import TokenrateBedrockInstrumentor

    tokenrate.uninstrument()
    hooks = BedrockHooks(Pipeline(None)).hooks()
    originals = {hook.target: inspect.getattr_static(*hook.resolve()) for hook in hooks}
    instrumentor = TokenrateBedrockInstrumentor()
    instrumentor.instrument()
    try:
        assert (instrumentor.active, instrumentor.skipped_hooks) == (True, {})
        for hook in hooks:
            assert inspect.getattr_static(*hook.resolve()) is not originals[hook.target], hook.target
    finally:
        instrumentor.uninstrument()
    for hook in hooks:
        assert inspect.getattr_static(*hook.resolve()) is originals[hook.target], hook.target


def test_the_four_model_operations_exist_in_bedrock_runtime(sim) -> None:
    client = bedrock_client(sim.bedrock_endpoint_url)
    model = client.meta.service_model
    assert model.service_name == SERVICE
    assert set(STREAM_KEYS) <= set(model.operation_names)
    for operation, key in STREAM_KEYS.items():
        output = model.operation_model(operation).output_shape
        if key is None:
            assert not model.operation_model(operation).has_event_stream_output
        else:
            assert model.operation_model(operation).has_event_stream_output
            assert output.members[key].type_name == "structure"  # the event stream union
    # Where the adapter finds a client's endpoint (to tell its own retries from a nested call's) and its URL.
    assert isinstance(client._endpoint, botocore.endpoint.Endpoint)
    assert client.meta.endpoint_url == sim.bedrock_endpoint_url


def test_botocore_sleeps_exactly_what_the_retry_handler_returned() -> None:
    """The delay hooks report the value `Endpoint._needs_retry` passes to ``time.sleep`` (its only sleep)."""
    source = inspect.getsource(botocore.endpoint.Endpoint._needs_retry)
    assert "first_non_none_response(responses)" in source
    assert "time.sleep(handler_response)" in source
    standard = inspect.getsource(botocore.retries.standard.RetryHandler.needs_retry)
    assert "self._retry_policy.compute_retry_delay(context)" in standard


def test_adaptive_mode_waits_in_the_token_bucket_before_sending() -> None:
    source = inspect.getsource(botocore.retries.adaptive.ClientRateLimiter.on_sending_request)
    assert "self._token_bucket.acquire()" in source


def test_each_attempt_reaches_prepare_request_signed(sim) -> None:
    """The trace context hook writes into what ``Endpoint.prepare_request`` gets: each attempt's request (retries
    too), after the signer ran (``request-created``), so a header written there stays out of the signature."""
    seen: list[tuple[str, str]] = []

    def note(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        (request,) = args
        seen.append((request.headers.get("Authorization", ""), request.headers.get("amz-sdk-request", "")))
        return wrapped(*args, **kwargs)

    client = bedrock_client(sim.bedrock_endpoint_url)
    sim.script(Step.rate_limited(code="ModelNotReadyException"))
    wrapt.wrap_function_wrapper("botocore.endpoint", "Endpoint.prepare_request", note)
    try:
        client.converse(modelId=CLAUDE, messages=HI)
    finally:
        unwrap(botocore.endpoint.Endpoint, "prepare_request")
    assert [s.status for s in sim.served] == [429, 200]
    assert [authorization.startswith("AWS4-HMAC-SHA256 ") for authorization, _ in seen] == [True, True]
    assert [attempt.split("attempt=")[1].split(";")[0] for _, attempt in seen] == ["1", "2"]
