"""``TokenrateOpenAIInstrumentor``: records every call made through the official ``openai`` SDK.

Enabled with no code change under ``opentelemetry-instrument`` (entry point ``tokenrate_openai``), or in code::

    from tokenrate.instrumentation.openai import TokenrateOpenAIInstrumentor
    TokenrateOpenAIInstrumentor().instrument()
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateOpenAIInstrumentor(TokenrateInstrumentor):
    sdk = "openai"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers._stainless import StainlessHooks
        from tokenrate.providers.openai import OpenAIProvider

        return StainlessHooks(OpenAIProvider(), pipeline).hooks()
