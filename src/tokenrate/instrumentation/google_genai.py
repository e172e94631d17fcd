"""``TokenrateGoogleGenAIInstrumentor``: records every generation and embedding made through ``google-genai``.

Enabled with no code change under ``opentelemetry-instrument`` (entry point ``tokenrate_google_genai``), or in
code::

    from tokenrate.instrumentation.google_genai import TokenrateGoogleGenAIInstrumentor
    TokenrateGoogleGenAIInstrumentor().instrument()

Covers ``google.genai.Client().models`` and ``client.aio.models`` (and ``client.chats``, which use them).
The hook points are the same in every 3.x release: the adapter's tests pass on 3.1.0 to 3.4.0, and on 3.0.0
except embedding tokens (3.0 does not parse ``usageMetadata`` of embeddings, so they are recorded as unknown).
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateGoogleGenAIInstrumentor(TokenrateInstrumentor):
    sdk = "google-genai"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers.google_genai import GenAIHooks

        return GenAIHooks(pipeline).hooks()
