"""The Groq adapter: the official ``groq`` SDK, Stainless-generated like ``openai`` (it imports ``httpx``).

Same client base, so the same hooks (pinned on groq 1.x by tests/contract). Its chat completions are OpenAI's,
and so is the token arithmetic (``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``,
``completion_tokens_details.reasoning_tokens``), with one difference in streams: the final chunk carries the
whole usage in ``x_groq.usage`` (``chunk.usage`` only when the user asked for ``stream_options.include_usage``,
which ``create`` has no argument for; tokenrate does not ask for it). Rate-limit headers are OpenAI's names
(Groq's ``-requests`` window is a day, its ``-tokens`` window a minute); ``retry-after`` on 429s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenrate.providers._lifecycle import StreamObserver
from tokenrate.providers._readers import field
from tokenrate.providers._stainless import Endpoint, StainlessProvider
from tokenrate.providers.openai import RATE_LIMIT_HEADERS, chat_usage, note_response_model
from tokenrate.ratelimits import parse_duration, read_rate_limits
from tokenrate.records import RateLimits

PROVIDER = "groq"


class GroqStreamState(StreamObserver):
    """Chat completion chunks: the usage comes with the last one, in ``x_groq.usage`` (or ``usage``)."""

    __slots__ = ()

    def observe(self, item: Any) -> bool:
        note_response_model(self.call, item)
        usage = chat_usage(item) or chat_usage(field(item, "x_groq"))
        if usage is not None:
            self.call.usage = usage
            self.complete = True
        return True


_CHAT = Endpoint("chat", chat_usage, GroqStreamState)


class GroqProvider(StainlessProvider):
    package = "groq"

    def endpoint(self, method: str, path: str, body: Any) -> Endpoint | None:
        if method.lower() != "post":
            return None
        return _CHAT if path.split("?", 1)[0].rstrip("/").endswith("/chat/completions") else None

    def provider_name(self, client: Any) -> str:
        return PROVIDER

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        return read_rate_limits(headers, kinds=RATE_LIMIT_HEADERS, parse_reset=parse_duration)
