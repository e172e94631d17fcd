"""What the providers' own Stainless SDKs that speak OpenAI's chat completions share (groq, cerebras, together).

Same client base as ``openai``, so the same hooks (`tokenrate.providers._stainless`); the same token arithmetic
(`tokenrate.providers.openai.chat_usage`); one provider name each. What differs is small, and is all an adapter
says: its package, its provider name, its endpoints, where a stream's usage comes (unasked, on the last chunk),
and its rate-limit headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tokenrate.providers._lifecycle import StreamObserver
from tokenrate.providers._stainless import Endpoint, StainlessProvider
from tokenrate.providers.openai import RATE_LIMIT_HEADERS, chat_usage, note_response_model
from tokenrate.ratelimits import RateLimitReader, parse_duration
from tokenrate.records import RateLimits, TokenUsage


class UsageOnLastChunk(StreamObserver):
    """Completion chunks whose last one carries the whole usage, without ``stream_options.include_usage``."""

    __slots__ = ()

    def usage_of(self, chunk: Any) -> TokenUsage | None:
        return chat_usage(chunk)

    def observe(self, item: Any) -> bool:
        note_response_model(self.call, item)
        usage = self.usage_of(item)
        if usage is not None:
            self.call.usage = usage
            self.complete = True
        return True


CHAT = Endpoint("chat", chat_usage, UsageOnLastChunk)
TEXT_COMPLETION = Endpoint("text_completion", chat_usage, UsageOnLastChunk)


class CompatibleSDKProvider(StainlessProvider):
    """A provider's own OpenAI-shaped Stainless SDK. Subclasses set the class attributes."""

    provider = ""
    """``gen_ai.provider.name`` of every call."""
    endpoints: tuple[tuple[str, Endpoint], ...] = (("/chat/completions", CHAT),)
    """(path ending, endpoint), tried in order: ``/chat/completions`` before ``/completions``."""
    rate_limit_headers: tuple[tuple[str, str, str, str], ...] = RATE_LIMIT_HEADERS
    parse_reset: Callable[[str | None], float | None] = staticmethod(parse_duration)

    def __init__(self) -> None:
        self._read_rate_limits = RateLimitReader(self.rate_limit_headers, self.parse_reset)

    def endpoint(self, method: str, path: str, body: Any) -> Endpoint | None:
        if method.lower() != "post":
            return None
        clean = path.split("?", 1)[0].rstrip("/")
        for ending, endpoint in self.endpoints:
            if clean.endswith(ending):
                return endpoint
        return None

    def provider_name(self, client: Any) -> str:
        return self.provider

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        return self._read_rate_limits(headers)
