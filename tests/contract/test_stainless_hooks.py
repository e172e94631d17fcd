"""Contract tests: every private SDK method tokenrate hooks exists on the installed Stainless SDKs.

If an SDK release moves or renames one of them, these fail loudly here; in users' apps the hook is skipped
with a warning and the rest keeps working (e.g. calls and tokens without throttle data).
"""

from __future__ import annotations

import importlib.metadata

import pytest

import tokenrate
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook
from tokenrate.providers._stainless import StainlessHooks
from tokenrate.providers.anthropic import AnthropicProvider
from tokenrate.providers.cerebras import CerebrasProvider
from tokenrate.providers.groq import GroqProvider
from tokenrate.providers.openai import OpenAIProvider
from tokenrate.providers.together import TogetherProvider

PROVIDERS = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "groq": GroqProvider,
    "cerebras-cloud-sdk": CerebrasProvider,
    "together": TogetherProvider,
}
"""Each Stainless SDK by its name in `tokenrate.sdks` (its distribution), with its adapter."""


@pytest.mark.parametrize("sdk", sorted(PROVIDERS))
def test_every_hook_point_exists_with_the_expected_parameters(sdk):
    provider = PROVIDERS[sdk]()
    hooks = StainlessHooks(provider, Pipeline(None)).hooks()
    problems = {hook.target: hook.check() for hook in hooks}
    version = importlib.metadata.version(sdk)
    assert {target: p for target, p in problems.items() if p} == {}, f"{sdk} {version} moved a hooked method"
    # The hooks tokenrate cannot work without are all there (``cerebras.cloud.sdk._base_client...``).
    targets = {hook.target for hook in hooks}
    for name in ("SyncAPIClient.request", "AsyncAPIClient._sleep_for_retry", "BaseClient._calculate_retry_timeout"):
        assert f"{provider.package}._base_client.{name}" in targets
    assert f"{provider.package}._streaming.Stream.__stream__" in targets
    if provider.propagates_trace_context:
        assert f"{provider.package}._base_client.BaseClient._build_request" in targets


@pytest.mark.parametrize("sdk", sorted(PROVIDERS))
def test_instrumenting_applies_every_hook(sdk):
    from tokenrate import _instrumentor

    tokenrate.uninstrument()
    instrumentor = _instrumentor(sdk)
    instrumentor.instrument()
    try:
        assert instrumentor.active
        assert instrumentor.skipped_hooks == {}
    finally:
        instrumentor.uninstrument()


def test_a_moved_or_changed_hook_point_is_reported():
    def wrapper(wrapped, instance, args, kwargs):  # pragma: no cover - never applied
        return wrapped(*args, **kwargs)

    moved = Hook("openai._base_client", "SyncAPIClient._sleep_before_retrying", wrapper, "retries")
    assert moved.check().startswith("missing")
    changed = Hook("openai._base_client", "SyncAPIClient._sleep_for_retry", wrapper, "retries", ("attempt_number",))
    assert changed.check() == "parameters changed: attempt_number not found"


def test_a_missing_hook_point_degrades_gracefully(caplog):
    from tokenrate.providers._patching import Patcher

    def wrapper(wrapped, instance, args, kwargs):  # pragma: no cover - never applied
        return wrapped(*args, **kwargs)

    patcher = Patcher([Hook("openai._base_client", "SyncAPIClient._gone", wrapper, "throttle data")])
    patcher.apply()
    assert patcher.applied == []
    assert "openai._base_client.SyncAPIClient._gone" in patcher.skipped
    assert "throttle data will be missing" in caplog.text
