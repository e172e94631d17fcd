"""The OpenAI adapter: which ``openai`` SDK requests are calls, and how to read their usage and headers.

Token arithmetic (OpenAI reports billed totals with their parts inside):

=================  ==============================================  =============================================
tokenrate          chat.completions / completions                  responses
=================  ==============================================  =============================================
input              ``prompt_tokens``                               ``input_tokens``
output             ``completion_tokens``                           ``output_tokens``
cache_read         ``prompt_tokens_details.cached_tokens``         ``input_tokens_details.cached_tokens``
cache_write        ``prompt_tokens_details.cache_write_tokens``    ``input_tokens_details.cache_write_tokens``
reasoning          ``completion_tokens_details.reasoning_tokens``  ``output_tokens_details.reasoning_tokens``
tool_use           unknown (OpenAI does not report it)             unknown
=================  ==============================================  =============================================

Embeddings report ``prompt_tokens`` only (input); their output is unknown rather than 0.

The provider is named from the client's base URL (`tokenrate.providers.openai_compatible`): the ``openai`` SDK
also reaches Groq, DeepSeek, OpenRouter, xAI... through ``base_url``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tokenrate._env import setting
from tokenrate.provider_numbers import usage_reader
from tokenrate.providers._lifecycle import StreamObserver
from tokenrate.providers._readers import count, field, is_mapping
from tokenrate.providers._stainless import CallState, Endpoint, StainlessProvider
from tokenrate.providers.openai_compatible import provider_of
from tokenrate.ratelimits import RateLimitReader, parse_duration
from tokenrate.recording import ActiveCall
from tokenrate.records import RateLimits, TokenUsage

INJECT_STREAM_USAGE_ENV = "TOKENRATE_OPENAI_INJECT_STREAM_USAGE"

RATE_LIMIT_HEADERS = tuple(
    (
        kind,
        f"x-ratelimit-limit-{kind}{window}",
        f"x-ratelimit-remaining-{kind}{window}",
        f"x-ratelimit-reset-{kind}{window}",
    )
    for kind, window in (("requests", ""), ("tokens", ""), ("requests", "-day"), ("tokens", "-minute"))
)
"""OpenAI's ``x-ratelimit-*`` headers (resets as Go durations, e.g. ``6m0s``), which Groq and xAI send too, and the
same with the window in the name, as Cerebras sends them (``-requests-day``, ``-tokens-minute``; resets in seconds).
A provider sends one set or the other."""


@usage_reader("openai usage")
def chat_usage(result: Any) -> TokenUsage | None:
    """Usage of a chat completion / legacy completion (or of its last stream chunk)."""
    usage = field(result, "usage")
    if usage is None:
        return None
    prompt_details = field(usage, "prompt_tokens_details")
    completion_details = field(usage, "completion_tokens_details")
    return TokenUsage(
        input=count(usage, "prompt_tokens"),
        output=count(usage, "completion_tokens"),
        cache_read=count(prompt_details, "cached_tokens"),
        cache_write=count(prompt_details, "cache_write_tokens"),
        reasoning=count(completion_details, "reasoning_tokens"),
    )


@usage_reader("openai responses usage")
def responses_usage(result: Any) -> TokenUsage | None:
    """Usage of a Responses API ``Response``."""
    usage = field(result, "usage")
    if usage is None:
        return None
    input_details = field(usage, "input_tokens_details")
    output_details = field(usage, "output_tokens_details")
    return TokenUsage(
        input=count(usage, "input_tokens"),
        output=count(usage, "output_tokens"),
        cache_read=count(input_details, "cached_tokens"),
        cache_write=count(input_details, "cache_write_tokens"),
        reasoning=count(output_details, "reasoning_tokens"),
    )


@usage_reader("openai embeddings usage")
def embeddings_usage(result: Any) -> TokenUsage | None:
    usage = field(result, "usage")
    if usage is None:
        return None
    return TokenUsage(input=count(usage, "prompt_tokens"))


def note_response_model(call: ActiveCall, chunk: Any) -> None:
    """The model a chunk names, the first time one does."""
    if call.response_model is None:
        model = field(chunk, "model")
        if isinstance(model, str):
            call.response_model = model


class ChatStreamState(StreamObserver):
    """Chat completion chunks: usage arrives in the last chunk, which has no choices.

    When tokenrate injected ``stream_options.include_usage``, the chunk that exists only because of it is read and
    hidden, so the user's stream looks exactly as it would have without tokenrate. Which chunk that is does not
    depend on its content (``"usage": null`` or garbage is still that chunk): a server that honours the option
    marks every other chunk with ``"usage": null`` (as the API reference says) and then sends one chunk without
    choices but with ``usage``. A server that did not mark them sends its usage chunk whether asked or not, so
    that chunk is the user's and stays; so does a choice-less chunk of another kind (Azure's prompt filters).
    """

    __slots__ = ("finished", "honoured", "injected", "settled")

    def __init__(self, call: ActiveCall) -> None:
        super().__init__(call)
        state: CallState = call.adapter_state
        self.injected = state.injected
        self.honoured = False
        """Chunks with choices carried ``"usage": null``: the server answers the injected option."""
        self.finished = False
        self.settled = False
        """The model is known and whether the server honours the injected option is too: a content chunk (no usage,
        no finish) has nothing left to tell."""

    def observe(self, item: Any) -> bool:
        # Every chunk passes here. The usual one, once settled (an SDK model with choices, no usage, no finish),
        # is read with plain attribute reads and no call; anything else takes the full path.
        if self.settled:
            try:
                if item.usage is None:
                    choices = item.choices
                    if choices:
                        if self.finished:
                            return True
                        for choice in choices:
                            if choice.finish_reason:
                                break
                        else:
                            return True
            except AttributeError:  # a plain dict, or a shape without these fields
                pass
        return self._observe(item)

    def _observe(self, item: Any) -> bool:
        call = self.call
        if call.response_model is None:
            note_response_model(call, item)
        if is_mapping(item):
            choices = item.get("choices")
            sent_usage = item.get("usage")
        else:
            choices = getattr(item, "choices", None)
            sent_usage = getattr(item, "usage", None)
        if sent_usage is not None:
            usage = chat_usage(item)
            if usage is not None:
                call.usage = usage
                self.complete = True
        if choices:
            if self.injected and not self.honoured and _sent(item, "usage"):
                self.honoured = True
            if not self.finished:
                for choice in choices:
                    if field(choice, "finish_reason"):
                        self.finished = True
                        break
            if self.finished and not self.honoured:
                self.complete = True  # no usage chunk of ours will come: the last choice's end is the natural end
            self.settled = call.response_model is not None and (self.honoured or not self.injected)
            return True
        if self.honoured and self.finished and _sent(item, "usage"):
            self.complete = True
            return False  # the chunk tokenrate asked for, whatever its usage says
        return True


def _sent(item: Any, name: str) -> bool:
    """The server sent this field, even as ``null`` (SDK models remember the fields they were built from)."""
    if isinstance(item, Mapping):
        return name in item
    return name in (getattr(item, "model_fields_set", None) or ())


class ResponsesStreamState(StreamObserver):
    """Responses API events: the terminal event carries the whole response, usage included."""

    __slots__ = ()

    _TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
    kind_field = "type"
    observed_kinds = _TERMINAL | {"response.created"}
    """The events that carry the response (model, usage): the deltas, the bulk of a stream, are not read."""

    def observe(self, item: Any) -> bool:
        kind = field(item, "type")
        if not isinstance(kind, str):  # a hostile answer's kind may be anything, unhashable too
            return True
        if kind in self._TERMINAL or kind == "response.created":
            response = field(item, "response")
            model = field(response, "model")
            if isinstance(model, str):
                self.call.response_model = model
            if kind in self._TERMINAL:
                usage = responses_usage(response)
                if usage is not None:
                    self.call.usage = usage
                self.complete = True
        return True


_CHAT = Endpoint("chat", chat_usage, ChatStreamState)
_RESPONSES = Endpoint("chat", responses_usage, ResponsesStreamState)
_EMBEDDINGS = Endpoint("embeddings", embeddings_usage)
_COMPLETIONS = Endpoint("text_completion", chat_usage, ChatStreamState)

_ENDPOINTS = {
    "/chat/completions": _CHAT,
    "/responses": _RESPONSES,
    "/embeddings": _EMBEDDINGS,
    "/completions": _COMPLETIONS,
}


class OpenAIProvider(StainlessProvider):
    package = "openai"

    def __init__(self) -> None:
        self.inject_stream_usage = setting(INJECT_STREAM_USAGE_ENV)
        self._read_rate_limits = RateLimitReader(RATE_LIMIT_HEADERS, parse_duration)

    def endpoint(self, method: str, path: str, body: Any) -> Endpoint | None:
        if method.lower() != "post":
            return None
        return _ENDPOINTS.get(path.split("?", 1)[0].rstrip("/"))

    def provider_name(self, client: Any) -> str:
        # Semconv: the Azure OpenAI client is its own provider; other clients are named by their base URL.
        if "Azure" in type(client).__name__:
            return "azure.ai.openai"
        return provider_of(client.base_url)

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        return self._read_rate_limits(headers)

    def prepare(self, call: ActiveCall, endpoint: Endpoint, options: Any) -> Any:
        """Ask for usage in chat streams that did not (``stream_options.include_usage``)."""
        if endpoint is not _CHAT or not call.info.stream or not self.inject_stream_usage:
            return options
        body = options.json_data
        if not isinstance(body, Mapping) or _is_raw(options):
            return options
        stream_options = body.get("stream_options")
        if stream_options is None:
            stream_options = {}
        elif not isinstance(stream_options, Mapping):
            return options
        if "include_usage" in stream_options:
            return options  # the user decided, either way
        changed = copy.copy(options)
        changed.json_data = {**body, "stream_options": {**stream_options, "include_usage": True}}
        call.adapter_state.injected = True
        return changed


def _is_raw(options: Any) -> bool:
    """``with_raw_response`` / ``with_streaming_response``: the user reads the bytes, so send them unchanged."""
    headers = getattr(options, "headers", None)
    if not isinstance(headers, Mapping):
        return False
    return any(key.lower() == "x-stainless-raw-response" for key in headers)
