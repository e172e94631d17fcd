"""Contract tests: the google-genai (and tenacity) internals tokenrate relies on are still where it hooks them.

If a release moves one, these fail loudly here; in users' apps the hook is skipped with a warning and the rest
keeps working (e.g. calls without exact retry waits, or usage of the last round-trip only).
"""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest
import tenacity
from google.genai import _api_client, models, types

import tokenrate
from tokenrate.instrumentation.google_genai import TokenrateGoogleGenAIInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook
from tokenrate.providers.google_genai import GenAIHooks

VERSION = importlib.metadata.version("google-genai")


def _hooks() -> list[Hook]:
    return GenAIHooks(Pipeline(None)).hooks()


def test_every_hook_point_exists_with_the_expected_parameters():
    problems = {hook.target: hook.check() for hook in _hooks()}
    assert {target: p for target, p in problems.items() if p} == {}, f"google-genai {VERSION} moved a hooked method"
    assert set(problems) == {
        *(
            f"google.genai.models.{cls}.{method}"
            for cls in ("Models", "AsyncModels")
            for method in (
                "generate_content",
                "generate_content_stream",
                "embed_content",
                "_generate_content",
                "_generate_content_stream",
            )
        ),
        "google.genai._api_client.BaseApiClient._request_once",
        "google.genai._api_client.BaseApiClient._async_request_once",
        "tenacity.wait.wait_exponential_jitter.__call__",
    }


def test_instrumenting_applies_every_hook_and_uninstrumenting_removes_them():
    tokenrate.uninstrument()
    instrumentor = TokenrateGoogleGenAIInstrumentor()
    instrumentor.instrument()
    try:
        assert instrumentor.active
        assert instrumentor.skipped_hooks == {}
        assert hasattr(inspect.getattr_static(models.Models, "generate_content"), "__wrapped__")
        assert hasattr(inspect.getattr_static(tenacity.wait_exponential_jitter, "__call__"), "__wrapped__")
    finally:
        instrumentor.uninstrument()
    for hook in _hooks():
        owner, attribute = hook.resolve()
        assert not hasattr(inspect.getattr_static(owner, attribute), "__wrapped__"), hook.target


def _unwrapped(owner: type, name: str):
    function = inspect.getattr_static(owner, name)
    return getattr(function, "__wrapped__", function)


@pytest.mark.parametrize("owner", [models.Models, models.AsyncModels])
def test_every_round_trip_goes_through_the_per_hop_methods(owner):
    """AFC and continuation must call the hooked per-hop methods, or tokens of earlier hops are lost."""
    for loop, hop in (
        ("_generate_content_with_continuation", "self._generate_content("),
        ("_generate_content_stream_with_continuation", "self._generate_content_stream("),
    ):
        assert hop in inspect.getsource(_unwrapped(owner, loop)), f"{owner.__name__}.{loop} no longer calls {hop}"
    for public, loop in (
        ("generate_content", "self._generate_content_with_continuation("),
        ("generate_content_stream", "self._generate_content_stream_with_continuation("),
    ):
        assert loop in inspect.getsource(_unwrapped(owner, public)), f"{owner.__name__}.{public} changed its loop"


def test_the_shapes_the_stream_wrappers_rely_on():
    # Sync: generator functions (nothing is sent before the first step), wrapped as generators.
    assert inspect.isgeneratorfunction(_unwrapped(models.Models, "generate_content_stream"))
    assert inspect.isgeneratorfunction(_unwrapped(models.Models, "_generate_content_stream"))
    # Async: coroutines that return async iterators; the public one sends nothing until its first __anext__.
    assert inspect.iscoroutinefunction(_unwrapped(models.AsyncModels, "generate_content_stream"))
    assert inspect.iscoroutinefunction(_unwrapped(models.AsyncModels, "_generate_content_stream"))
    assert "return stream_generator()" in inspect.getsource(_unwrapped(models.AsyncModels, "generate_content_stream"))


def test_the_retry_machinery_the_wait_hook_relies_on():
    # The SDK's only wait strategy, and a stop strategy whose limit tokenrate can read.
    args = _api_client.retry_args(types.HttpRetryOptions(attempts=3))
    assert type(args["wait"]) is tenacity.wait_exponential_jitter
    assert type(args["stop"]) is tenacity.stop_after_attempt
    assert args["stop"].max_attempt_number == 3
    # No retry options: one attempt, no wait strategy to hook (a 429 fails at once).
    assert "wait" not in _api_client.retry_args(None)
    # Attempts go through the hooked per-attempt methods.
    assert "self._request_once" in inspect.getsource(_unwrapped(_api_client.BaseApiClient, "_request"))
    assert "self._async_request_once" in inspect.getsource(_unwrapped(_api_client.BaseApiClient, "_async_request"))
    # tenacity reads the wait before it checks stop (so a wait after the last attempt is not a retry).
    source = inspect.getsource(tenacity.BaseRetrying._post_retry_check_actions)
    assert source.index("self._run_wait") < source.index("self._run_stop")


def test_a_moved_or_changed_hook_point_is_reported():
    def wrapper(wrapped, instance, args, kwargs):  # pragma: no cover - never applied
        return wrapped(*args, **kwargs)

    moved = Hook("google.genai.models", "Models._generate_content_v2", wrapper, "usage")
    assert moved.check().startswith("missing")
    changed = Hook("google.genai._api_client", "BaseApiClient._request_once", wrapper, "retries", ("attempt",))
    assert changed.check() == "parameters changed: attempt not found"
