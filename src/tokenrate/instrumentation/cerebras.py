"""``TokenrateCerebrasInstrumentor``: records every chat and text completion made through the official
``cerebras-cloud-sdk``.

Enabled with no code change under ``opentelemetry-instrument`` (entry point ``tokenrate_cerebras``), or in code::

    from tokenrate.instrumentation.cerebras import TokenrateCerebrasInstrumentor
    TokenrateCerebrasInstrumentor().instrument()
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateCerebrasInstrumentor(TokenrateInstrumentor):
    sdk = "cerebras-cloud-sdk"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers._stainless import StainlessHooks
        from tokenrate.providers.cerebras import CerebrasProvider

        return StainlessHooks(CerebrasProvider(), pipeline).hooks()
