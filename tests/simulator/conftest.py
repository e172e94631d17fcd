"""Clients of the real SDKs pointed at the simulated provider (the ``sim`` fixture is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest


@pytest.fixture
def oai(sim: Any) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    yield client
    client.close()


@pytest.fixture
def claude(sim: Any) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x")
    yield client
    client.close()


@pytest.fixture
def gemini(sim: Any) -> Any:
    genai = pytest.importorskip("google.genai", reason="google-genai 3.x needs Python >= 3.11")
    types = pytest.importorskip("google.genai.types")
    return genai.Client(api_key="x", http_options=types.HttpOptions(base_url=sim.gemini_base_url))
