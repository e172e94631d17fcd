"""``TokenrateBedrockInstrumentor``: records every model call made through boto3's ``bedrock-runtime`` client.

Enabled with no code change under ``opentelemetry-instrument`` (entry point ``tokenrate_bedrock``), or in code::

    from tokenrate.instrumentation.bedrock import TokenrateBedrockInstrumentor
    TokenrateBedrockInstrumentor().instrument()

Covers ``Converse``, ``ConverseStream``, ``InvokeModel`` and ``InvokeModelWithResponseStream`` of every
``bedrock-runtime`` client (created before or after instrumenting), in botocore's standard, legacy and adaptive
retry modes. Other AWS services are untouched.
"""

from __future__ import annotations

from tokenrate.instrumentation._base import TokenrateInstrumentor
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook


class TokenrateBedrockInstrumentor(TokenrateInstrumentor):
    sdk = "botocore"

    def hooks(self, pipeline: Pipeline) -> list[Hook]:
        from tokenrate.providers.bedrock import BedrockHooks

        return BedrockHooks(pipeline).hooks()
