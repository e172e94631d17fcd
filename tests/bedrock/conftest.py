"""Real boto3 ``bedrock-runtime`` clients on the simulated provider, with tokenrate instrumented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import wrapt
from bedrock_support import CACHED_PLAN, bedrock_client, isolated_aws_env  # noqa: F401 - autouse fixture
from opentelemetry.instrumentation.utils import unwrap


@pytest.fixture
def client(sim: Any, telemetry: Any) -> Any:
    """A standard-mode client (botocore's default), tokenrate instrumented."""
    sim.usage = CACHED_PLAN
    return bedrock_client(sim.bedrock_endpoint_url)


class DelayCapture:
    """The delays botocore's retry modes computed, as their own functions returned them (observed, unchanged)."""

    TARGETS = (
        ("botocore.retries.standard", "RetryPolicy.compute_retry_delay"),
        ("botocore.retryhandler", "RetryHandler.__call__"),
    )

    def __init__(self) -> None:
        self.delays: list[float] = []

    def _capture(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        delay = wrapped(*args, **kwargs)
        if delay is not None and delay is not False:
            self.delays.append(delay)
        return delay

    def __enter__(self) -> DelayCapture:
        for module, name in self.TARGETS:
            wrapt.wrap_function_wrapper(module, name, self._capture)
        return self

    def __exit__(self, *exc: object) -> None:
        import importlib

        for module, name in self.TARGETS:
            owner_name, attribute = name.split(".")
            unwrap(getattr(importlib.import_module(module), owner_name), attribute)


@pytest.fixture
def botocore_delays(telemetry: Any) -> Iterator[DelayCapture]:
    """Applied after tokenrate's hooks (so outside them): sees exactly what botocore is about to sleep."""
    with DelayCapture() as capture:
        yield capture
