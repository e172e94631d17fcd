"""``TokenrateAnthropicInstrumentor``: records every call made through the official ``anthropic`` SDK.

Covers ``Anthropic``/``AsyncAnthropic`` and the clients built on the same base (``AnthropicBedrock``,
``AnthropicVertex``), each with its own ``gen_ai.provider.name``. Entry point ``tokenrate_anthropic``.
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateAnthropicInstrumentor(TokenrateInstrumentor):
    sdk = "anthropic"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers._stainless import StainlessHooks
        from tokenrate.providers.anthropic import AnthropicProvider

        return StainlessHooks(AnthropicProvider(), pipeline).hooks()
