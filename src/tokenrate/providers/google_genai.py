"""The google-genai adapter: ``google.genai.Client`` (``client.models``) and ``client.aio.models``.

What is a call
--------------
One *logical call* is one user call of ``generate_content``, ``generate_content_stream`` or ``embed_content``
(sync or ``client.aio``; ``client.chats`` goes through them too). ``count_tokens`` and ``compute_tokens`` are
not generations and are not recorded. Operation names follow semconv: ``generate_content`` and ``embeddings``;
the provider is ``gcp.vertex_ai`` for a Vertex client and ``gcp.gemini`` otherwise.

Hook points, and why these (re-verified on google-genai 3.0.0-3.4.0, whose code here is identical)
------------------------------------------------------------------------------------------------
* ``Models.generate_content`` / ``generate_content_stream`` / ``embed_content`` and the ``AsyncModels``
  versions: the logical call. The `ActiveCall` and its span are made current while the SDK works; for streams,
  around each step of the returned (async) generator, because the request and its retries run lazily inside the
  first ``next()`` / ``__anext__()``.
* ``Models._generate_content`` / ``_generate_content_stream`` and the ``AsyncModels`` versions: one HTTP
  round-trip each. Automatic function calling and automatic continuation call them once per hop, and the
  object the user gets back carries only the last hop's usage (continuation merges, AFC does not), so the
  call's usage is the sum of what these return. They were chosen over ``BaseApiClient.request*`` because they
  hand back the ``GenerateContentResponse`` the SDK already parsed (no second JSON parse, no camelCase or
  Vertex-vs-Gemini body shapes to know), and they are only reached from the generation paths.
* ``BaseApiClient._request_once`` / ``_async_request_once``: one attempt each; a failed attempt's status and
  ``RetryInfo`` are kept until tenacity decides whether to retry. Each attempt's headers get tokenrate's span
  as their trace context (``traceparent``, by the global propagator).
* ``tenacity.wait.wait_exponential_jitter.__call__``: the exact seconds tenacity is about to sleep (the only
  wait strategy the SDK builds, in ``_api_client.retry_args``). It acts only when the current call is a
  google-genai call with a failed attempt pending whose exception is the one tenacity is retrying, so tenacity
  is untouched for every other user in the process. The retry is recorded *before* the sleep unless tenacity
  is about to give up (``stop_after_attempt`` reached: tenacity computes the wait before checking stop). If
  this hook ever stops firing, the next attempt records the retry with the measured wait instead.

Retries are off by default in google-genai: a 429 raises ``errors.ClientError`` at once, which becomes a failed
call with ``status_code=429`` (one throttle event, not retried). The API sends no rate-limit headers; the 429
body's ``google.rpc.RetryInfo.retryDelay`` becomes ``RateLimits.retry_after_s``.

Token arithmetic (source: google-genai 3.4 ``types.GenerateContentResponseUsageMetadata`` field docs)
----------------------------------------------------------------------------------------------------
``total_token_count`` is documented as "the sum of ``prompt_token_count``, ``candidates_token_count``,
``tool_use_prompt_token_count``, and ``thoughts_token_count``", and ``prompt_token_count`` as including the
cached content. So the prompt count excludes the tool-use prompt, and the candidates count excludes thoughts:

=============  ===================================================================
tokenrate      google-genai ``usage_metadata``
=============  ===================================================================
input          ``prompt_token_count + tool_use_prompt_token_count``
output         ``candidates_token_count + thoughts_token_count``
cache_read     ``cached_content_token_count`` (part of the prompt, so of input)
tool_use       ``tool_use_prompt_token_count`` (part of input)
reasoning      ``thoughts_token_count`` (part of output)
cache_write    unknown (Gemini bills cache storage, not cache writes, per request)
=============  ===================================================================

so ``input + output == total_token_count``. The API omits zero counts (proto3 JSON), so an absent part of a
known total counts as 0, and an absent input or output is derived from the total when the other is known.
Streams: every chunk's ``usage_metadata`` is the hop's running total, so the last one is the hop's usage.
Embeddings: ``usage_metadata.prompt_token_count`` (input; google-genai >= 3.1 parses it), else the Vertex
per-embedding ``statistics.token_count``; their output is unknown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from typing import Any

from tokenrate._safety import report, warn_once
from tokenrate.provider_numbers import seconds as valid_seconds
from tokenrate.provider_numbers import usage_reader
from tokenrate.providers._lifecycle import (
    AdapterState,
    CallHooks,
    StreamObserver,
    attempt_failed,
    discard_retry,
    observe_held_async,
    observe_held_sync,
    record_retry,
    server_of,
    watch,
)
from tokenrate.providers._patching import Hook
from tokenrate.providers._propagation import inject_trace_context
from tokenrate.providers._readers import count, field
from tokenrate.ratelimits import parse_duration, parse_retry_after
from tokenrate.recording import ActiveCall
from tokenrate.records import EMPTY_USAGE, CallInfo, RateLimits, TokenUsage, network_error_kind

PROVIDER_GEMINI = "gcp.gemini"
PROVIDER_VERTEX = "gcp.vertex_ai"
OPERATION_GENERATE = "generate_content"
OPERATION_EMBEDDINGS = "embeddings"

_MODELS = "google.genai.models"
_API_CLIENT = "google.genai._api_client"
_TENACITY_WAIT = "tenacity.wait"
_CALL_PARAMETERS = ("model", "contents", "config")

# Request URLs of the round-trips tokenrate records (an AFC function may send others, e.g. countTokens, while
# the call is current: their attempts must not be taken for the call's).
_RECORDED_METHODS = (":generateContent", ":streamGenerateContent", ":embedContent", ":batchEmbedContents", ":predict")


# -- usage ------------------------------------------------------------------------------------------------------


@usage_reader("google-genai usage")
def generate_usage(metadata: Any) -> TokenUsage | None:
    """Normalized usage of one ``GenerateContentResponse.usage_metadata`` (see the module docstring)."""
    if metadata is None:
        return None
    prompt = count(metadata, "prompt_token_count")
    candidates = count(metadata, "candidates_token_count")
    thoughts = count(metadata, "thoughts_token_count")
    cached = count(metadata, "cached_content_token_count")
    tool_use = count(metadata, "tool_use_prompt_token_count")
    total = count(metadata, "total_token_count")

    input_tokens = prompt + (tool_use or 0) if prompt is not None else None
    output_tokens = (candidates or 0) + (thoughts or 0) if candidates is not None or thoughts is not None else None
    if total is not None:
        if output_tokens is None and input_tokens is not None:
            output_tokens = max(0, total - input_tokens)
        elif input_tokens is None and output_tokens is not None:
            input_tokens = max(0, total - output_tokens)
        elif input_tokens is not None and output_tokens is not None and input_tokens + output_tokens != total:
            warn_once(
                "google-genai usage arithmetic",
                "tokenrate: google-genai usage parts (%s) do not add up to total_token_count %s; the parts are "
                "recorded as they are. Please report this with your google-genai version.",
                {"prompt": prompt, "candidates": candidates, "thoughts": thoughts, "tool_use_prompt": tool_use},
                total,
            )
    usage = TokenUsage(
        input=input_tokens,
        output=output_tokens,
        cache_read=cached,
        reasoning=thoughts,
        tool_use=tool_use,
    )
    return None if usage.is_empty else usage


@usage_reader("google-genai embeddings usage")
def embed_usage(response: Any) -> TokenUsage | None:
    """Usage of an ``EmbedContentResponse``: input tokens only."""
    metadata = field(response, "usage_metadata")
    prompt = count(metadata, "prompt_token_count")
    if prompt is None:
        prompt = count(metadata, "total_token_count")
    if prompt is None:
        # Vertex ``:predict`` answers count tokens per embedding instead.
        embeddings = field(response, "embeddings") or ()
        known = [c for e in embeddings if (c := count(field(e, "statistics"), "token_count")) is not None]
        prompt = sum(known) if known else None
    return None if prompt is None else TokenUsage(input=prompt)


# -- errors -------------------------------------------------------------------------------------------------------


def error_rate_limits(error: BaseException) -> RateLimits | None:
    """``RetryInfo.retryDelay`` of an ``errors.APIError`` body (else a ``retry-after`` header), as `RateLimits`."""
    delay = _retry_delay(getattr(error, "details", None))
    if delay is None:
        headers = getattr(getattr(error, "response", None), "headers", None)
        if headers is not None:
            try:
                delay = parse_retry_after(headers)
            except Exception:
                delay = None
    return RateLimits(retry_after_s=delay) if delay is not None else None


def _retry_delay(details: Any) -> float | None:
    if isinstance(details, list) and len(details) == 1:
        details = details[0]
    if not isinstance(details, Mapping):
        return None
    error = details.get("error")
    items = (error if isinstance(error, Mapping) else details).get("details")
    if not isinstance(items, list):
        return None
    for item in items:
        if not isinstance(item, Mapping) or not str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = item.get("retryDelay")
        seconds = None
        if isinstance(delay, str):  # proto3 JSON Duration, e.g. "37s" or "0.500s"
            seconds = parse_duration(delay)
        elif isinstance(delay, Mapping):  # {"seconds": "37", "nanos": 5e8}
            try:
                seconds = float(delay.get("seconds") or 0) + float(delay.get("nanos") or 0) / 1e9
            except (TypeError, ValueError, OverflowError):
                seconds = None
        return valid_seconds(seconds, "google.rpc.RetryInfo retryDelay", delay)
    return None


def _status(error: BaseException) -> int | None:
    code = getattr(error, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 else None


# -- call description ---------------------------------------------------------------------------------------------


def model_name(model: Any) -> str | None:
    """``gemini-2.5-flash`` from ``models/gemini-2.5-flash`` or a Vertex resource name; tuned models kept whole."""
    if not isinstance(model, str) or not model:
        return None
    _, found, tail = model.rpartition("models/")
    return tail if found and tail else model


class GenAICallState(AdapterState):
    """Adapter bookkeeping for one call (`ActiveCall.adapter_state`)."""

    __slots__ = ("done_usage", "hop_usage", "hops", "outer_usage")

    def __init__(self) -> None:
        super().__init__()
        self.hops = 0
        """Round-trips whose answer the per-hop hooks saw."""
        self.done_usage: TokenUsage = EMPTY_USAGE
        """Usage of the finished hops, summed."""
        self.hop_usage: TokenUsage | None = None
        """The running total of the stream hop in progress."""
        self.outer_usage: Any = None
        """The last ``usage_metadata`` the user's stream carried: the fallback if the per-hop hooks are missing."""


class GenAIStream(StreamObserver):
    """The user's stream of one call. The call starts at the first step: that is when the SDK sends the request
    (and runs its retries), so the call is current around every step. The user holds this generator itself."""

    __slots__ = ("hooks", "info")

    def __init__(self, hooks: GenAIHooks, info: CallInfo) -> None:
        super().__init__(None)
        self.hooks = hooks
        self.info = info

    def begin(self) -> bool:
        try:
            self.call = self.hooks.open(self.info, GenAICallState())  # CallRejected propagates: nothing is sent
        finally:
            if self.call is None:
                self._unwatch()
        return self.call is not None

    def observe(self, item: Any) -> bool:
        """Time to first chunk (marked by the driver), and the fallback usage."""
        state: GenAICallState = self.call.adapter_state
        metadata = field(item, "usage_metadata")
        if metadata is not None:
            state.outer_usage = metadata
        if state.hops == 0:
            _response_model(self.call, item)
        return True

    def ending(self) -> None:
        self._unwatch()
        GenAIHooks.fallback_usage(self.call)

    def failed(self, error: BaseException) -> None:
        self._unwatch()
        self.hooks.failed(self.call, error)

    def _unwatch(self) -> None:
        if self.watcher is not None:
            self.watcher.detach()  # kept: a dead watcher tells `observe_held_async` it was collected


# -- the hooks ----------------------------------------------------------------------------------------------------


class GenAIHooks(CallHooks):
    """The hook functions for ``google-genai``, bound to one pipeline."""

    sdk = "google-genai"

    def hooks(self) -> list[Hook]:
        call = _CALL_PARAMETERS
        attempt = ("http_request", "stream")
        models = [
            ("Models.generate_content", self._generate, "calls"),
            ("Models.generate_content_stream", self._generate_stream, "streamed calls"),
            ("Models.embed_content", self._embed, "embedding calls"),
            ("AsyncModels.generate_content", self._agenerate, "calls (async)"),
            ("AsyncModels.generate_content_stream", self._agenerate_stream, "streamed calls (async)"),
            ("AsyncModels.embed_content", self._aembed, "embedding calls (async)"),
            ("Models._generate_content", self._hop, "usage of every round-trip (AFC, continuation)"),
            ("Models._generate_content_stream", self._hop_stream, "usage of every streamed round-trip"),
            ("AsyncModels._generate_content", self._ahop, "usage of every round-trip (async)"),
            ("AsyncModels._generate_content_stream", self._ahop_stream, "usage of every streamed round-trip (async)"),
        ]
        return [
            *(Hook(_MODELS, qualname, wrapper, purpose, call) for qualname, wrapper, purpose in models),
            Hook(_API_CLIENT, "BaseApiClient._request_once", self._attempt, "retry status codes", attempt),
            Hook(_API_CLIENT, "BaseApiClient._async_request_once", self._aattempt, "retry status codes", attempt),
            Hook(_TENACITY_WAIT, "wait_exponential_jitter.__call__", self._wait, "exact retry waits", ("retry_state",)),
        ]

    # -- starting a call --------------------------------------------------------------------------------------

    def _info(self, instance: Any, kwargs: Mapping[str, Any], operation: str, *, stream: bool) -> CallInfo | None:
        try:
            api_client = instance._api_client
            base_url = field(field(kwargs.get("config"), "http_options"), "base_url")
            if not isinstance(base_url, str) or not base_url:
                base_url = api_client._http_options.base_url
            server = server_of(base_url if isinstance(base_url, str) else None)
            return CallInfo(
                provider=PROVIDER_VERTEX if getattr(api_client, "vertexai", False) else PROVIDER_GEMINI,
                operation=operation,
                request_model=model_name(kwargs.get("model")),
                server_address=server.address,
                server_port=server.port,
                stream=stream,
            )
        except Exception as exc:
            report("google-genai call start", exc)
            return None

    def _start(self, instance: Any, kwargs: Mapping[str, Any], operation: str) -> ActiveCall | None:
        info = self._info(instance, kwargs, operation, stream=False)
        return None if info is None else self.open(info, GenAICallState())

    # -- ending a call ----------------------------------------------------------------------------------------

    def read_error(self, call: ActiveCall, error: BaseException) -> None:
        discard_retry(call)
        status = _status(error)
        if status is not None:
            call.status_code = status
            call.rate_limits = error_rate_limits(error) or call.rate_limits
        self.fallback_usage(call)

    def read_result(self, call: ActiveCall, result: Any) -> bool:
        state: GenAICallState = call.adapter_state
        if call.info.operation == OPERATION_EMBEDDINGS:
            usage = embed_usage(result)
            if usage is not None:
                call.usage = usage
        elif state.hops == 0:
            state.outer_usage = field(result, "usage_metadata")
            self.fallback_usage(call)
            _response_model(call, result)
        return True

    @staticmethod
    def fallback_usage(call: ActiveCall) -> None:
        """The per-hop hooks saw nothing (they are missing): use what the user's object carried."""
        state: GenAICallState = call.adapter_state
        if state.hops == 0 and state.outer_usage is not None:
            usage = generate_usage(state.outer_usage)
            if usage is not None:
                call.usage = usage

    # -- calls --------------------------------------------------------------------------------------------------

    def _generate(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return self.run(self._start(instance, kwargs, OPERATION_GENERATE), wrapped, args, kwargs)

    async def _agenerate(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return await self.arun(self._start(instance, kwargs, OPERATION_GENERATE), wrapped, args, kwargs)

    def _embed(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return self.run(self._start(instance, kwargs, OPERATION_EMBEDDINGS), wrapped, args, kwargs)

    async def _aembed(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return await self.arun(self._start(instance, kwargs, OPERATION_EMBEDDINGS), wrapped, args, kwargs)

    def _generate_stream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return self._user_stream(wrapped(*args, **kwargs), instance, kwargs, observe_held_sync)

    async def _agenerate_stream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return self._user_stream(await wrapped(*args, **kwargs), instance, kwargs, observe_held_async)

    def _user_stream(self, inner: Any, instance: Any, kwargs: Mapping[str, Any], driver: Callable) -> Any:
        """The (async) generator the user gets instead of the SDK's; nothing is sent before its first step."""
        info = self._info(instance, kwargs, OPERATION_GENERATE, stream=True)
        if info is None:
            return inner
        observer = GenAIStream(self, info)
        outer = driver(inner, observer)
        observer.watcher = watch(outer, observer.dropped)
        return outer

    # -- round-trips (hops) -------------------------------------------------------------------------------------

    def _hop(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = wrapped(*args, **kwargs)
        call = self.current()
        if call is not None:
            _add_hop(call, result)
        return result

    async def _ahop(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = await wrapped(*args, **kwargs)
        call = self.current()
        if call is not None:
            _add_hop(call, result)
        return result

    def _hop_stream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inner = wrapped(*args, **kwargs)
        call = self.current()
        return inner if call is None else _observe_hop(inner, call)

    async def _ahop_stream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        inner = await wrapped(*args, **kwargs)  # the request (and its retries) ran in this await
        call = self.current()
        return inner if call is None else _aobserve_hop(inner, call)

    # -- attempts and retries -------------------------------------------------------------------------------------

    def _attempt_call(self, args: tuple, kwargs: dict) -> ActiveCall | None:
        call = self.current()
        if call is None:
            return None
        try:
            request = args[0] if args else kwargs.get("http_request")
            url = getattr(request, "url", None)
            if not isinstance(url, str) or not any(method in url for method in _RECORDED_METHODS):
                return None
            headers = getattr(request, "headers", None)
            if isinstance(headers, MutableMapping):
                inject_trace_context(headers)  # the SDK's per-attempt copy, as its own auth headers are
            record_retry(call)  # a failure still pending was retried (the wait hook did not fire)
            call.status_code = None
        except Exception as exc:
            report("google-genai attempt", exc)
            return None
        return call

    def _attempt_failed(self, call: ActiveCall, exc: BaseException) -> None:
        try:
            status = _status(exc)
            attempt_failed(
                call,
                status=status,
                error_kind=None if status is not None else network_error_kind(exc),
                rate_limits=error_rate_limits(exc) if status is not None else None,
                error=exc,
            )
        except Exception as inner:
            report("google-genai attempt", inner)

    def _attempt(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._attempt_call(args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            self._attempt_failed(call, exc)
            raise
        call.status_code = 200  # errors.APIError.raise_for_response raises for any other status
        return result

    async def _aattempt(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._attempt_call(args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self._attempt_failed(call, exc)
            raise
        call.status_code = 200  # errors.APIError.raise_for_async_response raises for any other status
        return result

    def _wait(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        wait = wrapped(*args, **kwargs)
        call = self.current()
        if call is not None and call.adapter_state.pending_retry is not None:
            try:
                self._waiting(call, args[0] if args else kwargs.get("retry_state"), wait)
            except Exception as exc:
                report("google-genai retry wait", exc)
        return wait

    def _waiting(self, call: ActiveCall, retry_state: Any, wait: Any) -> None:
        """tenacity computed its wait after a failed attempt of this call: record the retry before it sleeps."""
        pending = call.adapter_state.pending_retry
        outcome = getattr(retry_state, "outcome", None)
        if pending is None or outcome is None or not outcome.failed or outcome.exception() is not pending.error:
            return  # another tenacity user, inside this call (e.g. in an AFC function)
        pending.wait_s = float(wait)
        if _will_stop(retry_state) is False:
            record_retry(call)
        # stopping: tenacity gives up and re-raises, which `failed` records; unknown: the next attempt records it.


def _will_stop(retry_state: Any) -> bool | None:
    """Whether tenacity gives up after this attempt; ``None`` when the stop strategy is not the SDK's usual one."""
    stop = getattr(getattr(retry_state, "retry_object", None), "stop", None)
    limit = getattr(stop, "max_attempt_number", None)
    attempt = getattr(retry_state, "attempt_number", None)
    if type(stop).__name__ != "stop_after_attempt" or not isinstance(limit, int) or not isinstance(attempt, int):
        return None
    return attempt >= limit


def _response_model(call: ActiveCall, response: Any) -> None:
    version = field(response, "model_version")
    if isinstance(version, str) and version:
        call.response_model = version


def _add_hop(call: ActiveCall, response: Any) -> None:
    """A non-streamed round-trip answered: add its usage to the call's."""
    try:
        state: GenAICallState = call.adapter_state
        state.hops += 1
        usage = generate_usage(field(response, "usage_metadata"))
        if usage is not None:
            state.done_usage = state.done_usage + usage
            call.usage = state.done_usage
        _response_model(call, response)
    except Exception as exc:
        report("google-genai usage", exc)


def _hop_item(call: ActiveCall, state: GenAICallState, item: Any) -> None:
    try:
        metadata = field(item, "usage_metadata")
        if metadata is not None:
            usage = generate_usage(metadata)
            if usage is not None:
                state.hop_usage = usage  # the hop's running total: replaces, never adds
                call.usage = state.done_usage + usage
        _response_model(call, item)
    except Exception as exc:
        report("google-genai stream usage", exc)


def _hop_started(state: GenAICallState) -> None:
    state.hops += 1
    state.hop_usage = None


def _hop_ended(call: ActiveCall, state: GenAICallState) -> None:
    try:
        if state.hop_usage is not None:
            state.done_usage = state.done_usage + state.hop_usage
            state.hop_usage = None
            call.usage = state.done_usage
    except Exception as exc:
        report("google-genai stream usage", exc)


def _observe_hop(inner: Iterator[Any], call: ActiveCall) -> Iterator[Any]:
    """One streamed round-trip, as the SDK's own loop consumes it: note each chunk's running usage."""
    state: GenAICallState = call.adapter_state
    _hop_started(state)
    try:
        for item in inner:
            _hop_item(call, state, item)
            yield item
    finally:
        try:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
        finally:
            _hop_ended(call, state)


async def _aobserve_hop(inner: AsyncIterator[Any], call: ActiveCall) -> AsyncIterator[Any]:
    state: GenAICallState = call.adapter_state
    _hop_started(state)
    try:
        async for item in inner:
            _hop_item(call, state, item)
            yield item
    finally:
        _hop_ended(call, state)
