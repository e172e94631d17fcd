"""The Groq adapter: the official ``groq`` SDK, Stainless-generated like ``openai`` (it imports ``httpx``).

Same client base, so the same hooks (pinned on groq 1.x by tests/contract). Its chat completions are OpenAI's,
and so is the token arithmetic (``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``,
``completion_tokens_details.reasoning_tokens``), with one difference in streams: the final chunk carries the
whole usage in ``x_groq.usage`` (``chunk.usage`` only when the user asked for ``stream_options.include_usage``,
which ``create`` has no argument for; tokenrate does not ask for it). Rate-limit headers are OpenAI's names
(Groq's ``-requests`` window is a day, its ``-tokens`` window a minute); ``retry-after`` on 429s.
"""

from __future__ import annotations

from typing import Any

from tokenrate.providers._compatible_sdk import CompatibleSDKProvider, UsageOnLastChunk
from tokenrate.providers._readers import field
from tokenrate.providers._stainless import Endpoint
from tokenrate.providers.openai import chat_usage
from tokenrate.records import TokenUsage

PROVIDER = "groq"


class GroqStreamState(UsageOnLastChunk):
    """Chat completion chunks: the usage comes with the last one, in ``x_groq.usage`` (or ``usage``)."""

    __slots__ = ()

    def usage_of(self, chunk: Any) -> TokenUsage | None:
        return chat_usage(chunk) or chat_usage(field(chunk, "x_groq"))


class GroqProvider(CompatibleSDKProvider):
    package = "groq"
    provider = PROVIDER
    endpoints = (("/chat/completions", Endpoint("chat", chat_usage, GroqStreamState)),)
