"""Generic hooks for the Stainless-generated SDKs (``openai``, ``anthropic``): same client base, same hooks.

Both SDKs funnel every resource method, helper, raw and streaming variant through one method and retry in one
loop (see ``../shared/research/SDK_INTERNALS.md``), so one set of hooks covers everything:

* ``SyncAPIClient.request`` / ``AsyncAPIClient.request``: one logical call. Starts the `ActiveCall`, makes it
  current (ContextVar + span) while the SDK works, ends it when a parsed result comes back or the SDK raises.
* ``BaseClient._calculate_retry_timeout`` + ``_sleep_for_retry``: one `RetryRecord` per retry, with the exact
  seconds the SDK computed, recorded *before* it sleeps (so a live view sees the wait). SDK retries stay on.
* ``_process_response``: the final response's status and rate-limit headers; for a body that is still
  streaming (SSE, ``with_streaming_response``) it attaches an end-of-body observer, so the call ends exactly
  once when the body is finished, closed, or the response is garbage-collected (abandoned stream).
* ``Stream.__stream__`` / ``AsyncStream.__stream__``: observes each item for time to first chunk and usage,
  without replacing the user's stream object.

A provider module supplies a `StainlessProvider`: which endpoints are calls, how to read their usage, which
rate-limit headers exist, how to name the provider. Nothing here knows a provider, and what is not specific to
the Stainless client base (the call's start and end, stream endings, retry records) is the shared lifecycle's
(`tokenrate.providers._lifecycle`).
"""

from __future__ import annotations

import json
import sys
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import AsyncGeneratorType
from typing import Any, NamedTuple

from tokenrate._safety import report
from tokenrate.pipeline import Pipeline
from tokenrate.providers._lifecycle import (
    AdapterState,
    CallHooks,
    Server,
    StreamObserver,
    abandon,
    attempt_failed,
    observe_async,
    observe_sync,
    record_retry,
    server_of,
    watch,
)
from tokenrate.providers._patching import Hook
from tokenrate.providers._propagation import inject_trace_context
from tokenrate.providers._readers import field, is_mapping
from tokenrate.recording import OUTCOME_CLOSED, ActiveCall
from tokenrate.records import CallInfo, RateLimits, TokenUsage, network_error_kind


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint tokenrate records, e.g. OpenAI ``/chat/completions``."""

    operation: str
    usage: Callable[[Any], TokenUsage | None]
    """Usage from a parsed result: an SDK model or the plain JSON dict of a raw response."""
    stream_observer: Callable[[ActiveCall], StreamObserver] | None = None
    model_field: str = "model"


class StainlessProvider:
    """What a provider adapter tells the generic hooks. Subclass per SDK.

    What it says about a client (`provider_name`, `native_span`, `propagates`) may depend on the client's class and
    base URL only: it is asked once per pair (`StainlessHooks._client_facts`).
    """

    package: str = ""
    """The SDK's top-level package, e.g. ``openai``."""

    def endpoint(self, method: str, path: str, body: Any) -> Endpoint | None:
        raise NotImplementedError

    def provider_name(self, client: Any) -> str:
        raise NotImplementedError

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        raise NotImplementedError

    def prepare(self, call: ActiveCall, endpoint: Endpoint, options: Any) -> Any:
        """Return the request options to send (a changed copy, or the same object). Default: unchanged."""
        return options

    def extras(self, call: ActiveCall, result: Any) -> None:
        """Read anything beyond tokens from a parsed result (e.g. per-request server tool charges)."""

    def native_span(self, client: Any) -> bool:
        """Whether the SDK's own span for this call is kept (then tokenrate adds none). Default: no."""
        return False

    propagates_trace_context = True
    """tokenrate may write its span's trace context into each attempt's request (`StainlessHooks._propagate`);
    whether it does for a call is `propagates`'s answer."""

    def propagates(self, client: Any) -> bool | None:
        """Whether tokenrate writes the trace context of this client's calls: True yes; False no; None not unless
        the SDK hands the job over during the call (sets `CallState.propagate`). Default: yes."""
        return True

    def extra_hooks(self, hooks: StainlessHooks) -> list[Hook]:
        """SDK-specific hooks beyond the shared ones."""
        return []


class CallState(AdapterState):
    """Adapter bookkeeping for one call, kept in `ActiveCall.adapter_state`."""

    __slots__ = ("body_observed", "endpoint", "finalizer", "injected", "propagate", "stream")

    def __init__(self, endpoint: Endpoint, propagate: bool | None = True) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.propagate = propagate
        """tokenrate writes its span's trace context into each attempt's request (`StainlessProvider.propagates`)."""
        self.injected = False
        """tokenrate added something to the request (e.g. include_usage) whose answer the user must not see."""
        self.body_observed = False
        self.finalizer: weakref.finalize | None = None
        self.stream: StreamObserver | None = None


_MAX_INFOS = 256


class _ClientFacts(NamedTuple):
    """What a client's class and base URL say about each of its calls."""

    base_url: Any
    provider: str
    server: Server
    native_span: bool
    propagate: bool | None


# Response (httpx2 / httpx) -> the call whose body it carries. Weak keys: an entry lives as long as the response.
_calls_by_response: weakref.WeakKeyDictionary[Any, ActiveCall] = weakref.WeakKeyDictionary()


class StainlessHooks(CallHooks):
    """The hook functions for one Stainless SDK, bound to its provider config and pipeline."""

    def __init__(self, provider: StainlessProvider, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.provider = provider
        self.sdk = provider.package
        self._infos: dict[tuple[Any, ...], CallInfo] = {}
        """`CallInfo` per kind of call (provider, operation, model, stream, server): the same few all session."""
        self._clients: dict[tuple[type, int], _ClientFacts] = {}
        """`_ClientFacts` per (client class, base URL object): the same few all session."""

    def hooks(self) -> list[Hook]:
        base = f"{self.provider.package}._base_client"
        streaming = f"{self.provider.package}._streaming"
        request_params = ("cast_to", "options")
        sleep_params = ("retries_taken", "max_retries", "options", "response")
        process_params = ("response", "stream")
        timeout_params = ("remaining_retries", "options", "response_headers")
        return [
            Hook(base, "SyncAPIClient.request", self._request, "calls", request_params),
            Hook(base, "AsyncAPIClient.request", self._arequest, "calls (async)", request_params),
            Hook(base, "BaseClient._calculate_retry_timeout", self._retry_timeout, "exact retry waits", timeout_params),
            Hook(base, "SyncAPIClient._sleep_for_retry", self._sleep_for_retry, "retries/throttling", sleep_params),
            Hook(base, "AsyncAPIClient._sleep_for_retry", self._asleep_for_retry, "retries/throttling", sleep_params),
            Hook(base, "SyncAPIClient._process_response", self._process_response, "rate limits", process_params),
            Hook(base, "AsyncAPIClient._process_response", self._aprocess_response, "rate limits", process_params),
            Hook(streaming, "Stream.__stream__", self._stream, "stream usage/TTFC"),
            Hook(streaming, "AsyncStream.__stream__", self._astream, "stream usage/TTFC (async)"),
            *self._propagation_hooks(base),
            *self.provider.extra_hooks(self),
        ]

    def _propagation_hooks(self, base: str) -> list[Hook]:
        if not self.provider.propagates_trace_context:
            return []
        purpose = "trace context (traceparent) of tokenrate's span on each request"
        return [Hook(base, "BaseClient._build_request", self._propagate, purpose, ("options",))]

    def _propagate(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        """Each attempt's request of a recorded call carries tokenrate's span, unless the SDK writes it itself."""
        request = wrapped(*args, **kwargs)
        call = self.current()
        if call is not None and call.adapter_state.propagate is True:
            inject_trace_context(request.headers)
        return request

    # -- the call -----------------------------------------------------------------------------------------------

    def _start(self, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ActiveCall | None, tuple]:
        """Begin a call if this request is one we record; returns the (possibly changed) positional args."""
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
            if options is None:
                return None, args
            body = options.json_data
            endpoint = self.provider.endpoint(options.method, options.url, body)
            if endpoint is None:
                return None, args
            model = body.get(endpoint.model_field) if is_mapping(body) else None
            client_type, base_url = type(client), getattr(client, "base_url", None)
            facts = self._clients.get((client_type, id(base_url)))
            if facts is None or facts.base_url is not base_url:
                facts = self._client_facts(client, client_type, base_url)
            key = (
                facts.provider,
                endpoint.operation,
                model if isinstance(model, str) else None,
                bool(kwargs.get("stream", False)),
                facts.server.address,
                facts.server.port,
            )
            info = self._infos.get(key)
            if info is None:
                info = self._info(key)
        except Exception as exc:
            report(f"{self.sdk} call start", exc)
            return None, args
        native_span, propagate = facts.native_span, facts.propagate
        call = self.open(info, CallState(endpoint, propagate), native_span=native_span)
        if call is None:
            return None, args
        try:
            new_options = self.provider.prepare(call, endpoint, options)
            if new_options is not options:
                if len(args) > 1:
                    args = (args[0], new_options, *args[2:])
                else:
                    kwargs["options"] = new_options
        except Exception as exc:
            report(f"{self.sdk} request options", exc)
        return call, args

    def _client_facts(self, client: Any, client_type: type, base_url: Any) -> _ClientFacts:
        """What a client's class and base URL say about its calls, worked out once per (class, base URL object).

        Keyed by the URL object's identity and holding it (never the client), so an identity is not reused while
        cached; a client given a new base URL gets new facts. Bounded: starts over when full.
        """
        try:
            native_span = self.provider.native_span(client)
            propagate = self.provider.propagates(client)
        except Exception as exc:
            report(f"{self.sdk} span policy", exc)
            native_span, propagate = False, None
        facts = _ClientFacts(base_url, self.provider.provider_name(client), server_of(base_url), native_span, propagate)
        if len(self._clients) >= _MAX_INFOS:
            self._clients = {}
        self._clients[(client_type, id(base_url))] = facts
        return facts

    def _info(self, key: tuple[Any, ...]) -> CallInfo:
        """A new kind of call: its `CallInfo`, kept for the next calls of that kind (bounded: starts over)."""
        provider, operation, model, stream, address, port = key
        info = CallInfo(
            provider=provider,
            operation=operation,
            request_model=model,
            stream=stream,
            server_address=address,
            server_port=port,
        )
        if len(self._infos) >= _MAX_INFOS:
            self._infos = {}
        self._infos[key] = info
        return info

    def _request(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call, args = self._start(instance, args, kwargs)
        return self.run(call, wrapped, args, kwargs)

    async def _arequest(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call, args = self._start(instance, args, kwargs)
        return await self.arun(call, wrapped, args, kwargs)

    def read_error(self, call: ActiveCall, error: BaseException) -> None:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            call.status_code = status
            call.rate_limits = self.provider.rate_limits(response.headers) or call.rate_limits

    def read_result(self, call: ActiveCall, result: Any) -> bool:
        """A parsed result ends the call now; a body still streaming ends it later."""
        state: CallState = call.adapter_state
        if state.body_observed:
            return False
        http_response = None if _is_sdk_model(result) else getattr(result, "http_response", None)
        if http_response is not None and callable(getattr(result, "parse", None)):
            # with_raw_response on a non-streamed body: read usage from the JSON the SDK already holds.
            data = _json_body(http_response)
            if data is not None:
                self._read_parsed(call, state.endpoint, data)
        else:
            self._read_parsed(call, state.endpoint, result)
        return True

    def _read_parsed(self, call: ActiveCall, endpoint: Endpoint, result: Any) -> None:
        usage = endpoint.usage(result)
        if usage is not None:
            call.usage = usage
        model = field(result, "model")
        if isinstance(model, str):
            call.response_model = model
        self.provider.extras(call, result)

    # -- retries --------------------------------------------------------------------------------------------

    def _retry_timeout(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        wait = wrapped(*args, **kwargs)
        call = self.current()
        if call is not None:
            try:
                record_retry(call, wait_s=float(wait))
            except Exception as exc:
                report(f"{self.sdk} retry wait", exc)
        return wait

    def _attempt_failed(self, kwargs: dict) -> ActiveCall | None:
        """The SDK is about to sleep and retry: note which attempt failed; its wait completes the record."""
        call = self.current()
        if call is None:
            return None
        try:
            response = kwargs.get("response")
            status = getattr(response, "status_code", None) if response is not None else None
            attempt_failed(
                call,
                status=status if isinstance(status, int) else None,
                error_kind=network_error_kind(sys.exc_info()[1]),
                rate_limits=self.provider.rate_limits(response.headers) if response is not None else None,
            )
        except Exception as exc:
            report(f"{self.sdk} retry", exc)
            return None
        return call

    def _sleep_for_retry(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._attempt_failed(kwargs)
        try:
            return wrapped(*args, **kwargs)
        finally:
            self._retry_fallback(call)

    async def _asleep_for_retry(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._attempt_failed(kwargs)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            self._retry_fallback(call)

    def _retry_fallback(self, call: ActiveCall | None) -> None:
        """If the wait hook did not fire (SDK changed), record the retry with the measured sleep."""
        if call is None:
            return
        try:
            record_retry(call)
        except Exception as exc:
            report(f"{self.sdk} retry", exc)

    # -- the final response ------------------------------------------------------------------------------------

    def _on_response(self, kwargs: dict, *, is_async: bool) -> None:
        call = self.current()
        response = kwargs.get("response")
        if call is None or response is None:
            return
        try:
            if not response.is_success:  # anthropic middleware passes failed attempts through here too
                return
            call.status_code = response.status_code
            call.rate_limits = self.provider.rate_limits(response.headers)
            if not _body_loaded(response):
                self._observe_body(call, response, is_async=is_async)
        except Exception as exc:
            report(f"{self.sdk} response", exc)

    def _process_response(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        self._on_response(kwargs, is_async=False)
        return wrapped(*args, **kwargs)

    async def _aprocess_response(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        self._on_response(kwargs, is_async=True)
        return await wrapped(*args, **kwargs)

    def _observe_body(self, call: ActiveCall, response: Any, *, is_async: bool) -> None:
        """The body is still streaming: the call ends when it is closed, or when the response is dropped."""
        state: CallState = call.adapter_state
        if not _wrap_body(response, call, is_async=is_async):
            return
        state.body_observed = True
        _calls_by_response[response] = call
        state.finalizer = watch(response, abandon, call)

    # -- streams -------------------------------------------------------------------------------------------

    def _stream_observer(self, stream: Any) -> StreamObserver | None:
        try:
            call = _calls_by_response.get(stream.response)
            if call is None or call.finished:
                return None
            state: CallState = call.adapter_state
            factory = state.endpoint.stream_observer
            state.stream = factory(call) if factory is not None else StreamObserver(call)
            return state.stream
        except Exception as exc:
            report(f"{self.sdk} stream", exc)
            return None

    def _stream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        iterator = wrapped(*args, **kwargs)
        observer = self._stream_observer(instance)
        return iterator if observer is None else observe_sync(iterator, observer)

    def _astream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        iterator = wrapped(*args, **kwargs)
        observer = self._stream_observer(instance)
        return iterator if observer is None else observe_async(iterator, observer)


# -- response bodies --------------------------------------------------------------------------------------

_body_observer_classes: dict[type, type] = {}


def _wrap_body(response: Any, call: ActiveCall, *, is_async: bool) -> bool:
    """Replace ``response.stream`` by a same-kind byte stream that ends the call when closed."""
    stream = response.stream
    base = _byte_stream_base(stream, "AsyncByteStream" if is_async else "SyncByteStream")
    if base is None:
        return False
    observer_class = _body_observer_classes.get(base)
    if observer_class is None:
        observer_class = _make_body_observer(base)
        _body_observer_classes[base] = observer_class
    response.stream = observer_class(stream, call)
    return True


def _byte_stream_base(stream: Any, name: str) -> type | None:
    """httpx2's (or legacy httpx's) ``SyncByteStream``/``AsyncByteStream``, which ``Response.close`` checks for.

    Chosen by the client's kind, not by the stream alone: some bodies are both (anthropic's own tracing wraps
    them in a class that is), and the response's close method only accepts its own kind.
    """
    for module_name in ("httpx2", "httpx"):
        base = getattr(sys.modules.get(module_name), name, None)
        if base is not None and isinstance(stream, base):
            return base
    return None


_BODY_ATTRIBUTES_PER_ITEM = ("stream_observer",)
"""What an SDK reads off ``response.stream`` on every stream item: anthropic's ``Stream`` asks for its tracing
observer (``getattr(..., "stream_observer", None)``) before handing out each event. Answered through
``__getattr__``, a body without one would raise and catch an AttributeError twice per item (microseconds, more
than everything else tokenrate does per item); so the body observers hold the inner body's value (``None`` when it
has none), copied once when they wrap it."""


def _make_body_observer(base: type) -> type:
    if hasattr(base, "aclose"):

        class AsyncBodyObserver(base):  # type: ignore[misc, valid-type]
            __slots__ = ("_call", "_chunks", "_eof", "_error", "_inner", "_torn_down", "stream_observer")

            def __init__(self, inner: Any, call: ActiveCall) -> None:
                self._inner = inner
                self.stream_observer = getattr(inner, "stream_observer", None)  # see `_BODY_ATTRIBUTES_PER_ITEM`
                self._call = call
                self._eof = False
                self._error: BaseException | None = None
                self._torn_down = False
                self._chunks: Any = None
                """The body's own async generator, handed to httpx as is (`_read_by_stream`)."""

            def __getattr__(self, name: str) -> Any:
                return _inner_attribute(self, name)

            def __aiter__(self) -> AsyncIterator[bytes]:
                if not _read_by_stream(self._call):
                    return self._observed(self._inner)
                chunks = self._inner.__aiter__()
                if type(chunks) is not AsyncGeneratorType:
                    return self._observed(chunks)  # no way to tell from it whether it was torn down
                self._chunks = chunks  # read at the close: was it closed under the stream?
                return chunks

            async def _observed(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
                try:
                    async for chunk in chunks:
                        yield chunk
                except GeneratorExit:
                    # The iterators reading the body were closed before its end: not by a close() of the
                    # response (that leaves them be), but by asyncio closing a dropped stream's generators.
                    self._torn_down = True
                    raise
                except Exception as exc:
                    self._error = exc
                    raise
                self._eof = True

            async def aclose(self) -> None:
                try:
                    await self._inner.aclose()
                finally:
                    # A passed-on generator that is done was closed under the stream (its end and its errors come
                    # while the stream observer is busy, which `_body_closed` checks first): torn down.
                    chunks = self._chunks
                    torn_down = self._torn_down or (chunks is not None and chunks.ag_frame is None)
                    _body_closed(self._call, self._eof, self._error, torn_down=torn_down)

        return AsyncBodyObserver

    class SyncBodyObserver(base):  # type: ignore[misc, valid-type]
        __slots__ = ("_call", "_eof", "_error", "_inner", "stream_observer")

        def __init__(self, inner: Any, call: ActiveCall) -> None:
            self._inner = inner
            self.stream_observer = getattr(inner, "stream_observer", None)  # see `_BODY_ATTRIBUTES_PER_ITEM`
            self._call = call
            self._eof = False
            self._error: BaseException | None = None

        def __getattr__(self, name: str) -> Any:
            return _inner_attribute(self, name)

        def __iter__(self) -> Iterator[bytes]:
            if _read_by_stream(self._call):
                return iter(self._inner)
            return self._observed()

        def _observed(self) -> Iterator[bytes]:
            try:
                yield from self._inner
            except Exception as exc:
                self._error = exc
                raise
            self._eof = True

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                _body_closed(self._call, self._eof, self._error)

    return SyncBodyObserver


def _read_by_stream(call: ActiveCall) -> bool:
    """The body starts to be read inside a step of the call's stream observer (the SDK's stream reads it).

    Then every chunk of it is read in such a step, and whatever ends the reading (the last chunk, an error) ends
    that step too, which the stream observer sees: the body can be handed to httpx as is, without a generator of
    tokenrate's in between (one fewer per chunk). Read once per body.
    """
    try:
        observer = call.adapter_state.stream
        return observer is not None and observer.busy
    except Exception as exc:
        report("response body", exc)
        return False


def _inner_attribute(observer: Any, name: str) -> Any:
    """Anything else the SDK or httpx reads off the body (``elapsed``, anthropic's ``stream_observer``)."""
    if name.startswith("__") or name in ("_inner", "_call", "_chunks", "_eof", "_error", "_torn_down"):
        raise AttributeError(name)
    return getattr(object.__getattribute__(observer, "_inner"), name)


def _body_closed(call: ActiveCall, eof: bool, error: BaseException | None, *, torn_down: bool = False) -> None:
    """The response body was closed: by the stream's end, ``close()``, a helper, ``with`` exit, or a drop.

    While the stream observer is inside a step of the SDK's stream, the SDK closed it on its way to ending that
    stream (naturally or with an exception): the observer, which sees how, ends the call. A stream the user
    dropped is abandoned, whichever of its generators was closed first (the garbage collector and asyncio close
    them in no set order): the SDK's own (whose ``finally`` closes the response), or the body's iterators
    (``torn_down``). Otherwise it is a natural end if the body was read to its last byte or the provider's stream
    said it was done, an error if reading it failed, else an early close.
    """
    try:
        state: CallState = call.adapter_state
        if state.finalizer is not None:
            state.finalizer.detach()
        observer = state.stream
        if call.finished or (observer is not None and observer.busy):
            return
        if observer is not None and (torn_down or observer.orphaned):
            observer.dropped()
            return
        if error is not None:
            call.finish(error=error)
            return
        complete = eof or (observer is not None and observer.complete)
        call.finish(outcome=None if complete else OUTCOME_CLOSED)
    except Exception as exc:
        report("response close", exc)


_sdk_model_types: dict[type, bool] = {}


def _is_sdk_model(result: Any) -> bool:
    """A parsed SDK model (pydantic), not a raw response: asking one for ``http_response`` would take pydantic's
    failed-attribute path (an exception raised and caught, microseconds on every call). Known once per type."""
    kind = type(result)
    known = _sdk_model_types.get(kind)
    if known is None:
        fields = getattr(kind, "model_fields", None)
        if not isinstance(fields, dict):
            fields = getattr(kind, "__fields__", None)  # pydantic v1
        known = isinstance(fields, dict) and "http_response" not in fields
        if len(_sdk_model_types) < 256:  # bounded: an SDK has a few hundred result types at most
            _sdk_model_types[kind] = known
    return known


def _body_loaded(response: Any) -> bool:
    return hasattr(response, "_content")


def _json_body(response: Any) -> Any:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type or not _body_loaded(response):
        return None
    return json.loads(response.content)
