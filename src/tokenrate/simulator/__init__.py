"""A simulated LLM provider for tests and demos: the wire protocols of OpenAI, Anthropic, Gemini, Bedrock, Groq,
Cerebras and Together.

The official SDKs work against it unmodified (point their base URL, or boto3's ``endpoint_url``, at it). It serves
scripted behaviour (`Step`: 429s with Retry-After, 529s, 5xx, 400, delays, dropped connections, tool / function
calls, streams that fail part-way, Bedrock error codes and mid-stream exception frames), exact
token usage in each provider's own arithmetic (`UsagePlan`), provider-style rate-limit headers, and an optional
rate-limit model (`RateLimitModel`: token buckets per protocol and model). It never calls a model and never
pretends to be a real provider: every answer carries ``x-tokenrate-simulated: true``.

    with SimulatedProvider() as sim:
        sim.usage = UsagePlan(input=120, output=30, cache_read=20)
        sim.script(Step.rate_limited(retry_after=1), Step.ok())
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
"""

from tokenrate.simulator._client import SimulatorClient
from tokenrate.simulator._model import ServedRequest, Step, UsagePlan
from tokenrate.simulator._ratelimit import RateLimitModel, go_duration
from tokenrate.simulator._server import SIMULATED_HEADER, SimulatedProvider

__all__ = [
    "SIMULATED_HEADER",
    "RateLimitModel",
    "ServedRequest",
    "SimulatedProvider",
    "SimulatorClient",
    "Step",
    "UsagePlan",
    "go_duration",
]
