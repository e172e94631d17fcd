"""``TokenrateTogetherInstrumentor``: records every chat and text completion made through the official
``together`` SDK.

Enabled with no code change under ``opentelemetry-instrument`` (entry point ``tokenrate_together``), or in code::

    from tokenrate.instrumentation.together import TokenrateTogetherInstrumentor
    TokenrateTogetherInstrumentor().instrument()
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateTogetherInstrumentor(TokenrateInstrumentor):
    sdk = "together"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers._stainless import StainlessHooks
        from tokenrate.providers.together import TogetherProvider

        return StainlessHooks(TogetherProvider(), pipeline).hooks()
