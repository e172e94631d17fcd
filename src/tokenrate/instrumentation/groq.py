"""``TokenrateGroqInstrumentor``: records every chat completion made through the official ``groq`` SDK.

Enabled with no code change under ``opentelemetry-instrument`` (entry point ``tokenrate_groq``), or in code::

    from tokenrate.instrumentation.groq import TokenrateGroqInstrumentor
    TokenrateGroqInstrumentor().instrument()
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateGroqInstrumentor(TokenrateInstrumentor):
    sdk = "groq"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers._stainless import StainlessHooks
        from tokenrate.providers.groq import GroqProvider

        return StainlessHooks(GroqProvider(), pipeline).hooks()
