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
rate-limit headers exist, how to name the provider. Nothing here knows a provider.
"""

from __future__ import annotations

import json
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tokenrate._safety import report
from tokenrate.pipeline import Pipeline
from tokenrate.providers._patching import Hook
from tokenrate.recording import OUTCOME_ABANDONED, OUTCOME_CLOSED, ActiveCall, current_call
from tokenrate.records import CallInfo, RateLimits, TokenUsage, network_error_kind


class StreamState:
    """Reads one provider stream's items; subclasses know the event shapes.

    `observe` returns False to hide an item from the user (the usage-only chunk tokenrate asked for).
    """

    __slots__ = ("call", "complete")

    def __init__(self, call: ActiveCall) -> None:
        self.call = call
        self.complete = False
        """The provider signalled the natural end of the stream (so closing it now is not an early close)."""

    def observe(self, item: Any) -> bool:
        return True


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint tokenrate records, e.g. OpenAI ``/chat/completions``."""

    operation: str
    usage: Callable[[Any], TokenUsage | None]
    """Usage from a parsed result: an SDK model or the plain JSON dict of a raw response."""
    stream_state: Callable[[ActiveCall], StreamState] | None = None
    model_field: str = "model"


class StainlessProvider:
    """What a provider adapter tells the generic hooks. Subclass per SDK."""

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

    def extra_hooks(self, hooks: StainlessHooks) -> list[Hook]:
        """SDK-specific hooks beyond the shared ones."""
        return []


class CallState:
    """Adapter bookkeeping for one call, kept in `ActiveCall.adapter_state`."""

    __slots__ = ("body_observed", "endpoint", "finalizer", "injected", "pending_retry", "stream_state")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.injected = False
        """tokenrate added something to the request (e.g. include_usage) whose answer the user must not see."""
        self.body_observed = False
        self.pending_retry: tuple[int, Any, BaseException | None] | None = None
        self.finalizer: weakref.finalize | None = None
        self.stream_state: StreamState | None = None


# Response (httpx2 / httpx) -> the call whose body it carries. Weak keys: an entry lives as long as the response.
_calls_by_response: weakref.WeakKeyDictionary[Any, ActiveCall] = weakref.WeakKeyDictionary()


class StainlessHooks:
    """The hook functions for one Stainless SDK, bound to its provider config and pipeline."""

    def __init__(self, provider: StainlessProvider, pipeline: Pipeline) -> None:
        self.provider = provider
        self.pipeline = pipeline

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
            *self.provider.extra_hooks(self),
        ]

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
            stream = bool(kwargs.get("stream", False))
            model = body.get(endpoint.model_field) if isinstance(body, Mapping) else None
            info = CallInfo(
                provider=self.provider.provider_name(client),
                operation=endpoint.operation,
                request_model=model if isinstance(model, str) else None,
                stream=stream,
                **_server(client),
            )
        except Exception as exc:
            report(f"{self.provider.package} call start", exc)
            return None, args
        try:
            native_span = self.provider.native_span(client)
        except Exception as exc:
            report(f"{self.provider.package} span policy", exc)
            native_span = False
        # CallRejected (an enforced budget) propagates on purpose: the request is never sent.
        call = ActiveCall(self.pipeline, info, native_span=native_span)
        call.adapter_state = CallState(endpoint)
        try:
            new_options = self.provider.prepare(call, endpoint, options)
            if new_options is not options:
                if len(args) > 1:
                    args = (args[0], new_options, *args[2:])
                else:
                    kwargs["options"] = new_options
        except Exception as exc:
            report(f"{self.provider.package} request options", exc)
        return call, args

    def _request(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call, args = self._start(instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with call:
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            self._failed(call, exc)
            raise
        self._returned(call, result)
        return result

    async def _arequest(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call, args = self._start(instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            with call:
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self._failed(call, exc)
            raise
        self._returned(call, result)
        return result

    def _failed(self, call: ActiveCall, exc: BaseException) -> None:
        try:
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            if isinstance(status, int):
                call.status_code = status
                call.rate_limits = self.provider.rate_limits(response.headers) or call.rate_limits
            call.finish(error=exc)
        except Exception as inner:
            report(f"{self.provider.package} call error", inner)

    def _returned(self, call: ActiveCall, result: Any) -> None:
        """The SDK returned. A parsed result ends the call now; a body still streaming ends it later."""
        try:
            state: CallState = call.adapter_state
            if call.finished or state.body_observed:
                return
            http_response = getattr(result, "http_response", None)
            if http_response is not None and callable(getattr(result, "parse", None)):
                # with_raw_response on a non-streamed body: read usage from the JSON the SDK already holds.
                data = _json_body(http_response)
                if data is not None:
                    self._read_result(call, state.endpoint, data)
            else:
                self._read_result(call, state.endpoint, result)
            call.finish()
        except Exception as exc:
            report(f"{self.provider.package} result", exc)
            call.finish()

    def _read_result(self, call: ActiveCall, endpoint: Endpoint, result: Any) -> None:
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
        call = current_call.get()
        if call is not None:
            try:
                self._emit_retry(call, wait_s=float(wait))
            except Exception as exc:
                report(f"{self.provider.package} retry wait", exc)
        return wait

    def _pending_retry(self, kwargs: dict) -> ActiveCall | None:
        """Note which attempt failed before the SDK computes its wait; `_emit_retry` completes it."""
        call = current_call.get()
        if call is None:
            return None
        try:
            state: CallState = call.adapter_state
            state.pending_retry = (kwargs.get("retries_taken", 0), kwargs.get("response"), sys.exc_info()[1])
        except Exception as exc:
            report(f"{self.provider.package} retry", exc)
            return None
        return call

    def _emit_retry(self, call: ActiveCall, *, wait_s: float) -> None:
        state: CallState = call.adapter_state
        pending, state.pending_retry = state.pending_retry, None
        if pending is None:
            return
        _, response, error = pending
        status = getattr(response, "status_code", None) if response is not None else None
        rate_limits = self.provider.rate_limits(response.headers) if response is not None else None
        call.add_retry(
            status_code=status if isinstance(status, int) else None,
            error_kind=network_error_kind(error),
            wait_s=wait_s,
            rate_limits=rate_limits,
        )

    def _sleep_for_retry(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._pending_retry(kwargs)
        began = time.monotonic()
        try:
            return wrapped(*args, **kwargs)
        finally:
            self._retry_fallback(call, began)

    async def _asleep_for_retry(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._pending_retry(kwargs)
        began = time.monotonic()
        try:
            return await wrapped(*args, **kwargs)
        finally:
            self._retry_fallback(call, began)

    def _retry_fallback(self, call: ActiveCall | None, began: float) -> None:
        """If the wait hook did not fire (SDK changed), record the retry with the measured sleep."""
        if call is None:
            return
        try:
            if call.adapter_state.pending_retry is not None:
                self._emit_retry(call, wait_s=time.monotonic() - began)
        except Exception as exc:
            report(f"{self.provider.package} retry", exc)

    # -- the final response ------------------------------------------------------------------------------------

    def _on_response(self, kwargs: dict, *, is_async: bool) -> None:
        call = current_call.get()
        response = kwargs.get("response")
        if call is None or response is None or call.finished:
            return
        try:
            if not response.is_success:  # anthropic middleware passes failed attempts through here too
                return
            call.status_code = response.status_code
            call.rate_limits = self.provider.rate_limits(response.headers)
            if not _body_loaded(response):
                self._observe_body(call, response, is_async=is_async)
        except Exception as exc:
            report(f"{self.provider.package} response", exc)

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
        finalizer = weakref.finalize(response, _abandoned, call)
        finalizer.atexit = False
        state.finalizer = finalizer

    # -- streams -------------------------------------------------------------------------------------------

    def _stream_state(self, stream: Any) -> StreamState | None:
        try:
            call = _calls_by_response.get(stream.response)
            if call is None or call.finished:
                return None
            state: CallState = call.adapter_state
            factory = state.endpoint.stream_state
            state.stream_state = factory(call) if factory is not None else StreamState(call)
            return state.stream_state
        except Exception as exc:
            report(f"{self.provider.package} stream", exc)
            return None

    def _stream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        iterator = wrapped(*args, **kwargs)
        state = self._stream_state(instance)
        return iterator if state is None else _observe_items(iterator, state)

    def _astream(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        iterator = wrapped(*args, **kwargs)
        state = self._stream_state(instance)
        return iterator if state is None else _aobserve_items(iterator, state)


# -- stream observers -------------------------------------------------------------------------------------


def _observe_item(state: StreamState, item: Any) -> bool:
    state.call.mark_chunk()
    try:
        return state.observe(item)
    except Exception as exc:
        report("stream item", exc)
        return True


def _observe_items(inner: Iterator[Any], state: StreamState) -> Iterator[Any]:
    """Yield the SDK's items unchanged (minus any tokenrate-injected one), noting first chunk and usage."""
    dropped = False
    try:
        for item in inner:
            if _observe_item(state, item):
                yield item
        state.complete = True
    except GeneratorExit:
        # Closing the SDK stream closes its response first (and ends the call); an iterator closed while the
        # call is still open was collected with the stream the user dropped.
        dropped = True
        raise
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()
        _end_stream(state, dropped)


async def _aobserve_items(inner: AsyncIterator[Any], state: StreamState) -> AsyncIterator[Any]:
    dropped = False
    try:
        async for item in inner:
            if _observe_item(state, item):
                yield item
        state.complete = True
    except GeneratorExit:
        dropped = True
        raise
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()
        _end_stream(state, dropped)


def _end_stream(state: StreamState, dropped: bool) -> None:
    try:
        call = state.call
        if state.complete:
            call.finish()
        elif dropped:
            call.finish(outcome=OUTCOME_ABANDONED, ended_at=call.last_chunk_at)
        else:
            call.finish(outcome=OUTCOME_CLOSED)
    except Exception as exc:
        report("stream end", exc)


def _abandoned(call: ActiveCall) -> None:
    """The response was garbage-collected before anyone closed it: record what we saw, once."""
    try:
        if not call.finished:
            call.finish(outcome=OUTCOME_ABANDONED, ended_at=call.last_chunk_at)
    except Exception as exc:
        report("abandoned stream", exc)


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


def _make_body_observer(base: type) -> type:
    if hasattr(base, "aclose"):

        class AsyncBodyObserver(base):  # type: ignore[misc, valid-type]
            __slots__ = ("_call", "_eof", "_inner")

            def __init__(self, inner: Any, call: ActiveCall) -> None:
                self._inner = inner
                self._call = call
                self._eof = False

            def __getattr__(self, name: str) -> Any:
                return _inner_attribute(self, name)

            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in self._inner:
                    yield chunk
                self._eof = True

            async def aclose(self) -> None:
                try:
                    await self._inner.aclose()
                finally:
                    _body_closed(self._call, self._eof)

        return AsyncBodyObserver

    class SyncBodyObserver(base):  # type: ignore[misc, valid-type]
        __slots__ = ("_call", "_eof", "_inner")

        def __init__(self, inner: Any, call: ActiveCall) -> None:
            self._inner = inner
            self._call = call
            self._eof = False

        def __getattr__(self, name: str) -> Any:
            return _inner_attribute(self, name)

        def __iter__(self) -> Iterator[bytes]:
            yield from self._inner
            self._eof = True

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                _body_closed(self._call, self._eof)

    return SyncBodyObserver


def _inner_attribute(observer: Any, name: str) -> Any:
    """Anything else the SDK or httpx reads off the body (``elapsed``, anthropic's ``stream_observer``)."""
    if name.startswith("__") or name in ("_inner", "_call", "_eof"):
        raise AttributeError(name)
    return getattr(object.__getattribute__(observer, "_inner"), name)


def _body_closed(call: ActiveCall, eof: bool) -> None:
    """The response body was closed: by the stream's end, ``close()``, a helper, or ``with`` exit.

    It is a natural end if the body was read to its last byte or the provider's stream said it was done.
    """
    try:
        state: CallState = call.adapter_state
        if state.finalizer is not None:
            state.finalizer.detach()
        if call.finished:
            return
        complete = eof or (state.stream_state is not None and state.stream_state.complete)
        call.finish(outcome=None if complete else OUTCOME_CLOSED)
    except Exception as exc:
        report("response close", exc)


def _body_loaded(response: Any) -> bool:
    return hasattr(response, "_content")


def _json_body(response: Any) -> Any:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type or not _body_loaded(response):
        return None
    return json.loads(response.content)


# -- small readers ------------------------------------------------------------------------------------------


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for raw JSON dicts; ``None`` when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def count(obj: Any, name: str) -> int | None:
    """An integer token count, or ``None`` when the field is absent or not a number."""
    value = field(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _server(client: Any) -> dict[str, Any]:
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not host:
        return {}
    port = getattr(url, "port", None)
    if port is None:
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    return {"server_address": host, "server_port": port}
