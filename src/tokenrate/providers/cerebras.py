"""The Cerebras adapter: the official ``cerebras-cloud-sdk`` (``cerebras.cloud.sdk``), Stainless-generated on httpx.

Same client base as ``openai``, so the same hooks (pinned by tests/contract). Chat and text completions are
OpenAI's, and so is the token arithmetic (``prompt_tokens``, ``completion_tokens``,
``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``). In a stream the last
chunk carries the whole usage (and ``time_info``) without ``stream_options.include_usage`` being asked, so
tokenrate sends the request unchanged. Rate-limit headers name their window (``x-ratelimit-*-requests-day``,
``-tokens-minute``, resets in seconds), read as for the ``openai`` client pointed at Cerebras. The client's
``GET /v1/tcp_warming`` when it is created is not a call.
"""

from __future__ import annotations

from tokenrate.providers._compatible_sdk import CHAT, TEXT_COMPLETION, CompatibleSDKProvider

PROVIDER = "cerebras"
"""No semconv well-known value; genai-prices' provider id."""


class CerebrasProvider(CompatibleSDKProvider):
    package = "cerebras.cloud.sdk"
    provider = PROVIDER
    endpoints = (("/chat/completions", CHAT), ("/completions", TEXT_COMPLETION))
