"""The Together adapter: the official ``together`` SDK (2.x and later), Stainless-generated on httpx.

Same client base as ``openai``, so the same hooks (pinned by tests/contract). Chat and text completions are
OpenAI's, read with the same arithmetic; Together reports ``prompt_tokens``, ``completion_tokens`` and
``total_tokens`` only, so cache and reasoning counts are unknown unless it sends OpenAI's details. In a stream
the last chunk carries the whole usage without ``stream_options.include_usage`` being asked, so tokenrate sends
the request unchanged. Rate-limit headers: ``x-ratelimit-limit`` / ``-remaining`` / ``-reset`` (requests, reset
in seconds) and ``x-tokenlimit-limit`` / ``-remaining`` (tokens).
"""

from __future__ import annotations

from tokenrate.providers._compatible_sdk import CHAT, TEXT_COMPLETION, CompatibleSDKProvider

PROVIDER = "together"
"""No semconv well-known value; genai-prices' provider id."""

RATE_LIMIT_HEADERS = (
    ("requests", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
    ("tokens", "x-tokenlimit-limit", "x-tokenlimit-remaining", "x-tokenlimit-reset"),
)


class TogetherProvider(CompatibleSDKProvider):
    package = "together"
    provider = PROVIDER
    endpoints = (("/chat/completions", CHAT), ("/completions", TEXT_COMPLETION))
    rate_limit_headers = RATE_LIMIT_HEADERS
