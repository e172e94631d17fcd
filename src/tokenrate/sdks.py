"""The SDKs tokenrate instruments, listed once.

`tokenrate.instrument()`, ``tokenrate diagnostics``, the instrumentors, the demo and the simulator all read
this list; a new SDK is one entry here (plus its adapter, instrumentor and, in ``pyproject.toml``, its extra and
entry point, which a test checks against this list).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SupportedSDK:
    """One instrumented SDK: how to find it, which versions work, and how tokenrate plugs into it."""

    name: str
    """Its PyPI distribution, and the name `tokenrate.instrument()` takes."""
    module: str
    """Its import name (``google.genai``)."""
    requirement: str
    """The versions tokenrate supports (its hooks are verified on them), e.g. ``openai >= 2.0, < 4``."""
    instrumentor: str
    """``module:Class`` of its `BaseInstrumentor`."""
    entry_point: str
    """The ``opentelemetry_instrumentor`` entry point name (``opentelemetry-instrument`` loads it)."""
    extra: str
    """The pip extra that installs it: ``tokenrate[openai]``."""
    simulator_protocol: str
    """The wire protocol the simulated provider serves it with."""
    simulator_path: str = ""
    """The path its base URL needs on the simulated provider (OpenAI clients expect ``/v1``)."""
    other_instrumentations: tuple[str, ...] = ()
    """Distributions of other instrumentations that also record this SDK's calls (double counting)."""
    other_entry_points: tuple[str, ...] = ()
    """Their ``opentelemetry_instrumentor`` entry point names."""

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:  # its parent package (``google``) is missing
            return False

    def instrumentor_class(self) -> Any:
        """The instrumentor class; ImportError when its module cannot be imported."""
        module_name, _, class_name = self.instrumentor.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


SDKS: tuple[SupportedSDK, ...] = (
    SupportedSDK(
        name="openai",
        module="openai",
        requirement="openai >= 2.0, < 4",
        instrumentor="tokenrate.instrumentation.openai:TokenrateOpenAIInstrumentor",
        entry_point="tokenrate_openai",
        extra="openai",
        simulator_protocol="openai",
        simulator_path="/v1",
        other_instrumentations=(
            "opentelemetry-instrumentation-openai-v2",
            "opentelemetry-instrumentation-openai",
            "openinference-instrumentation-openai",
        ),
        other_entry_points=("openai", "openai_v2"),
    ),
    SupportedSDK(
        name="anthropic",
        module="anthropic",
        requirement="anthropic >= 1.0, < 3",
        instrumentor="tokenrate.instrumentation.anthropic:TokenrateAnthropicInstrumentor",
        entry_point="tokenrate_anthropic",
        extra="anthropic",
        simulator_protocol="anthropic",
        other_instrumentations=(
            "opentelemetry-instrumentation-anthropic",
            "openinference-instrumentation-anthropic",
        ),
        other_entry_points=("anthropic",),
    ),
    SupportedSDK(
        name="google-genai",
        module="google.genai",
        requirement="google-genai >= 3.0, < 4",
        instrumentor="tokenrate.instrumentation.google_genai:TokenrateGoogleGenAIInstrumentor",
        entry_point="tokenrate_google_genai",
        extra="google-genai",
        simulator_protocol="gemini",
        other_instrumentations=(
            "opentelemetry-instrumentation-google-genai",
            "opentelemetry-instrumentation-google-generativeai",
            "opentelemetry-instrumentation-vertexai",
            "openinference-instrumentation-google-genai",
        ),
        other_entry_points=("google-genai", "google_genai", "vertexai", "genai"),
    ),
    SupportedSDK(
        # boto3's ``bedrock-runtime`` client (Amazon Bedrock). The hooks are in botocore, so botocore's version is
        # the one that matters; from 1.37.24 its model has Bedrock's cache counts (docs/compatibility.md).
        name="botocore",
        module="botocore",
        requirement="botocore >= 1.37.24, < 2",
        instrumentor="tokenrate.instrumentation.bedrock:TokenrateBedrockInstrumentor",
        entry_point="tokenrate_bedrock",
        extra="bedrock",
        simulator_protocol="bedrock",
        other_instrumentations=("opentelemetry-instrumentation-botocore",),
        other_entry_points=("botocore",),
    ),
    SupportedSDK(
        name="groq",
        module="groq",
        requirement="groq >= 0.30, < 2",
        instrumentor="tokenrate.instrumentation.groq:TokenrateGroqInstrumentor",
        entry_point="tokenrate_groq",
        extra="groq",
        simulator_protocol="groq",
        simulator_path="",
        other_instrumentations=("opentelemetry-instrumentation-groq", "openinference-instrumentation-groq"),
        other_entry_points=("groq",),
    ),
    SupportedSDK(
        # Cerebras' own SDK; before 1.35 it has no ``_sleep_for_retry`` hook point (docs/compatibility.md).
        name="cerebras-cloud-sdk",
        module="cerebras.cloud.sdk",
        requirement="cerebras-cloud-sdk >= 1.35, < 2",
        instrumentor="tokenrate.instrumentation.cerebras:TokenrateCerebrasInstrumentor",
        entry_point="tokenrate_cerebras",
        extra="cerebras",
        simulator_protocol="cerebras",
        simulator_path="/cerebras",
    ),
    SupportedSDK(
        # Together's SDK is Stainless-generated from 2.0 on (1.x was hand-written on requests). Its base URL ends in
        # ``/v1`` in 2.x, not from 3.0 on (``https://api.together.ai``, paths ``/v1/...``).
        name="together",
        module="together",
        requirement="together >= 2.0, < 4",
        instrumentor="tokenrate.instrumentation.together:TokenrateTogetherInstrumentor",
        entry_point="tokenrate_together",
        extra="together",
        simulator_protocol="together",
        simulator_path="/together",
        other_instrumentations=("opentelemetry-instrumentation-together", "openinference-instrumentation-together"),
        other_entry_points=("together",),
    ),
)

BY_NAME: dict[str, SupportedSDK] = {sdk.name: sdk for sdk in SDKS}


def sdk_named(name: str) -> SupportedSDK:
    """The entry for ``name``; ValueError naming the supported SDKs otherwise."""
    found = BY_NAME.get(name)
    if found is None:
        raise ValueError(f"unknown SDK {name!r}; expected one of {', '.join(BY_NAME)}")
    return found
