"""Clients of every instrumented SDK against one simulated provider, for tests of the shared call lifecycle."""

from __future__ import annotations

import inspect
from typing import Any

import anthropic
import openai
import pytest
from sdk_support import HAS_GENAI

ANTHROPIC_NATIVE_SPANS = "open_telemetry" in inspect.signature(anthropic.Anthropic.__init__).parameters
"""anthropic >= 1.14 makes its own spans: give it the test's tracer provider, so "one span per call" is real."""


def make_client(sdk: str, sim: Any, telemetry: Any, *, timeout: float = 10.0, is_async: bool = False) -> Any:
    """A client of ``sdk`` on the simulator, without SDK retries (each failure reaches the user at once)."""
    if sdk == "openai":
        cls = openai.AsyncOpenAI if is_async else openai.OpenAI
        return cls(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0, timeout=timeout)
    if sdk == "anthropic":
        cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
        native = {"open_telemetry": {"tracer_provider": telemetry.tracer_provider}} if ANTHROPIC_NATIVE_SPANS else {}
        return cls(base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=0, timeout=timeout, **native)
    if sdk == "google-genai":
        if not HAS_GENAI:
            pytest.skip("google-genai 3.x needs Python >= 3.11")
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=sim.gemini_base_url, timeout=int(timeout * 1000))
        return genai.Client(api_key="test-key", http_options=options)
    raise ValueError(sdk)
