"""The life of one recorded SDK call, whatever the SDK: start, run, stream, retry, end (exactly once).

An adapter only knows its SDK: which request is a call (its `CallInfo`), how to read usage, headers and errors
from the SDK's objects, and where the SDK's retry path decides and sleeps. Everything else lives here, once:

* `CallHooks`: start a call (a budget's `CallRejected` passes through on purpose: nothing is sent), make it
  current while the SDK works, end it with the SDK's result or exception, never letting tokenrate's own failure
  reach the user.
* `StreamObserver` and the stream drivers (`observe_sync` / `observe_async`, and the ``held`` ones for a
  generator the user holds): observe a stream item by item (first chunk, usage) and end the call the way the
  stream ended: naturally (``ok``), with an exception (``error``, with the usage
  seen so far), closed early (``closed``), or dropped unread and collected (``abandoned``, ended at its last
  chunk).
* `attempt_failed` / `record_retry`: a retry is noted when an attempt fails and recorded with the exact wait
  the SDK computed, or, if that hook no longer fires, with the time measured until the next attempt.
* `PerBaseURL` / `server_of`: what a client's base URL says (its server address, the provider behind it),
  worked out once per URL object, not per call.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

from tokenrate._safety import report
from tokenrate.errors import CallRejected
from tokenrate.pipeline import Pipeline
from tokenrate.recording import OUTCOME_ABANDONED, OUTCOME_CLOSED, ActiveCall, current_call
from tokenrate.records import CallInfo, RateLimits

T = TypeVar("T")

# -- the call ---------------------------------------------------------------------------------------------------


class CallHooks:
    """Base of one SDK's hook functions: every recorded call goes through `open`, `run` and its end here.

    Subclasses say how to read the SDK's results (`read_result`) and exceptions (`read_error`).
    """

    sdk: str = ""
    """The SDK's name in tokenrate's own log messages, e.g. ``openai``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def read_result(self, call: ActiveCall, result: Any) -> bool:
        """Read usage and the like from what the SDK returned; False when the call goes on (a body still streams)."""
        return True

    def read_error(self, call: ActiveCall, error: BaseException) -> None:
        """Read what the SDK's exception tells about the call (status, rate limits, usage so far)."""

    def open(self, info: CallInfo | None, state: AdapterState, *, native_span: bool = False) -> ActiveCall | None:
        """Start recording a call; ``None`` when tokenrate cannot (the call then goes on unrecorded).

        `CallRejected` (an enforced budget) propagates on purpose, before anything is sent.
        """
        if info is None:
            return None
        try:
            call = ActiveCall(self.pipeline, info, native_span=native_span)
        except CallRejected:
            raise
        except Exception as exc:
            report(f"{self.sdk} call start", exc)
            return None
        state.owner = self
        call.adapter_state = state
        return call

    def current(self) -> ActiveCall | None:
        """The call of this SDK that the request running here belongs to, if it is still open.

        Another SDK's request inside it (e.g. in a google-genai automatic function call) must not touch it.
        """
        call = current_call.get()
        if call is None or call.finished or getattr(call.adapter_state, "owner", None) is not self:
            return None
        return call

    def run(self, call: ActiveCall | None, wrapped: Callable, args: tuple, kwargs: dict) -> Any:
        """Run the SDK's method with the call current (its retries find it; its span is the parent)."""
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with call:
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            self.failed(call, exc)
            raise
        self.returned(call, result)
        return result

    async def arun(self, call: ActiveCall | None, wrapped: Callable, args: tuple, kwargs: dict) -> Any:
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            with call:
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self.failed(call, exc)
            raise
        self.returned(call, result)
        return result

    def failed(self, call: ActiveCall, error: BaseException) -> None:
        """The SDK raised: the call is an error of that exception's type."""
        try:
            self.read_error(call, error)
        except Exception as exc:
            report(f"{self.sdk} call error", exc)
        _finish(call, self.sdk, error=error)

    def returned(self, call: ActiveCall, result: Any) -> None:
        """The SDK returned: the call ends now, unless its body is still streaming."""
        try:
            if call.finished or not self.read_result(call, result):
                return
        except Exception as exc:
            report(f"{self.sdk} result", exc)
        _finish(call, self.sdk)


def _finish(call: ActiveCall, where: str, **how: Any) -> None:
    try:
        call.finish(**how)
    except Exception as exc:
        report(f"{where} call end", exc)


# -- per-call bookkeeping and retries -----------------------------------------------------------------------------


class PendingRetry:
    """An attempt that failed and that the SDK is about to retry (or may: its retry path has not said yet)."""

    __slots__ = ("error", "error_kind", "failed_at", "rate_limits", "status", "wait_s")

    def __init__(
        self, status: int | None, error_kind: str | None, rate_limits: RateLimits | None, error: BaseException | None
    ) -> None:
        self.status = status
        self.error_kind = error_kind
        self.rate_limits = rate_limits
        self.error = error
        self.failed_at = time.monotonic()
        self.wait_s: float | None = None
        """The wait the SDK computed, once known (recorded with the retry)."""


class AdapterState:
    """Base of an adapter's bookkeeping for one call (`ActiveCall.adapter_state`)."""

    __slots__ = ("owner", "pending_retry")

    def __init__(self) -> None:
        self.owner: CallHooks | None = None
        """The hooks that opened the call (set by `CallHooks.open`)."""
        self.pending_retry: PendingRetry | None = None


def attempt_failed(
    call: ActiveCall,
    *,
    status: int | None,
    error_kind: str | None,
    rate_limits: RateLimits | None,
    error: BaseException | None = None,
) -> PendingRetry:
    """Note a failed attempt; `record_retry` records it once the SDK has decided to retry."""
    pending = PendingRetry(status, error_kind, rate_limits, error)
    call.adapter_state.pending_retry = pending
    return pending


def record_retry(call: ActiveCall, wait_s: float | None = None) -> None:
    """Record the pending retry, if any: with ``wait_s`` (the SDK's exact wait), else the wait noted on it,
    else the time measured since the attempt failed (the hook that gives the exact wait did not fire)."""
    state: AdapterState = call.adapter_state
    pending = state.pending_retry
    if pending is None:
        return
    state.pending_retry = None
    if wait_s is None:
        wait_s = pending.wait_s if pending.wait_s is not None else time.monotonic() - pending.failed_at
    call.add_retry(
        status_code=pending.status, error_kind=pending.error_kind, wait_s=wait_s, rate_limits=pending.rate_limits
    )


def discard_retry(call: ActiveCall) -> None:
    """The SDK gave up after the pending attempt: it was not retried."""
    call.adapter_state.pending_retry = None


# -- streams ------------------------------------------------------------------------------------------------------


class StreamObserver:
    """One streamed call: reads its items (subclasses know the SDK's shapes) and ends it the way it ended.

    `observe` returns False to hide an item from the user (one that exists only because tokenrate asked for it).
    A subclass whose items say their kind in a field (``type``) names that field and the kinds it reads
    (`kind_field`, `observed_kinds`): the drivers pass every other item on without calling `observe`.
    """

    __slots__ = ("_generator", "_inner", "call", "complete", "watcher")

    kind_field: str | None = None
    """The attribute that names an item's kind (e.g. ``type``); ``None``: every item goes to `observe`."""
    observed_kinds: frozenset[Any] = frozenset()
    """The kinds `observe` reads: any other passes unread (it must be one `observe` would ignore). An item without
    the attribute (a plain dict, an unknown shape) always goes to `observe`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # None is what the drivers' ``getattr(item, kind_field, None)`` gives an item without the field.
        cls.observed_kinds = frozenset(cls.observed_kinds) | {None}

    def __init__(self, call: ActiveCall | None) -> None:
        self.call = call
        self.complete = False
        """The provider signalled the natural end of the stream (so closing it now is not an early close)."""
        self._generator: weakref.ref | None = None
        """The observing (async) generator, once made (weakly: the call must not keep the SDK's stream alive)."""
        self._inner: weakref.ref | None = None
        """The SDK's async generator that the observing one wraps (weakly, for the same reason)."""
        self.watcher: weakref.finalize | None = None
        """Set when the user holds the observing generator: it is watched for collection (`watch`)."""

    @property
    def busy(self) -> bool:
        """The observing generator is inside a step (or the close) of the SDK's iterator.

        Whatever ends that step, the observer sees next; so a response the SDK closes meanwhile, on its way to
        ending the stream, leaves the end to the observer (which knows whether it ended well or raised).
        """
        generator = self._generator() if self._generator is not None else None
        return bool(getattr(generator, "gi_running", False) or getattr(generator, "ag_running", False))

    @property
    def orphaned(self) -> bool:
        """The SDK's iterator is ending without the user: its stream was dropped.

        The user reaches the SDK's iterator only through the observing generator, so it is a drop when that
        generator is gone (collected), or when the SDK's async generator runs while the observing one does not
        drive it: asyncio is closing it itself (its finalizer hook for a collected generator, or
        ``shutdown_asyncgens`` at loop close), in no set order with the observing one. Read at the end, never
        per item; nothing is touched.
        """
        if self._generator is None:
            return False
        generator = self._generator()
        if generator is None:
            return True
        inner = self._inner() if self._inner is not None else None
        return bool(getattr(inner, "ag_running", False)) and not getattr(generator, "ag_running", False)

    # -- what an adapter adds ---------------------------------------------------------------------------------

    def begin(self) -> bool:
        """Before the first step of a stream the user holds: False to pass it through unobserved.

        May raise `CallRejected` (then nothing is sent).
        """
        return self.call is not None

    def observe(self, item: Any) -> bool:
        return True

    def ending(self) -> None:
        """Just before the call's record is made (e.g. read usage from what the user's objects carried)."""

    # -- the ends -----------------------------------------------------------------------------------------------

    def ended(self) -> None:
        """The SDK's iterator is exhausted: the natural end."""
        self.complete = True
        self._end()

    def failed(self, error: BaseException) -> None:
        """The stream raised (dropped connection, error event, read timeout...): an error, with the usage so far."""
        self._end(error=error)

    def closed(self) -> None:
        """Closed before its natural end (unless the provider had already said it was done)."""
        self._end(outcome=None if self.complete else OUTCOME_CLOSED)

    def dropped(self) -> None:
        """Collected unread: abandoned, ended at its last chunk (unless the provider had said it was done)."""
        if self.complete:
            self._end()
        else:
            self._end(outcome=OUTCOME_ABANDONED, ended_at=self.call.last_chunk_at if self.call is not None else None)

    def _end(self, **how: Any) -> None:
        call = self.call
        if call is None or call.finished:
            return
        try:
            self.ending()
        except Exception as exc:
            report("stream end", exc)
        _finish(call, "stream", **how)

    def _arrived(self, item: Any) -> bool:
        """A step gave an item: first-chunk time, then the adapter reads it."""
        self.call.mark_chunk()
        try:
            return self.observe(item)
        except Exception as exc:
            report("stream item", exc)
            return True


def abandon(call: ActiveCall | None) -> None:
    """A stream (or response) was collected before anyone closed it: record what was seen, once."""
    try:
        if call is not None and not call.finished:
            call.finish(outcome=OUTCOME_ABANDONED, ended_at=call.last_chunk_at)
    except Exception as exc:
        report("abandoned stream", exc)


def watch(obj: Any, callback: Callable[..., None], *args: Any) -> weakref.finalize | None:
    """Call ``callback(*args)`` when ``obj`` is garbage-collected (not at interpreter exit)."""
    try:
        finalizer = weakref.finalize(obj, callback, *args)
    except Exception as exc:
        report("stream watch", exc)
        return None
    finalizer.atexit = False
    return finalizer


# Two kinds of streams. Most SDKs keep their item iterator inside their own stream object, which the user
# iterates: `observe_sync` / `observe_async` wrap that iterator (a plain loop: cheap per item), and only the SDK's
# object can close it, when it is collected. google-genai hands the user the generator itself, which sends the
# request lazily: `observe_held_sync` / `observe_held_async` start the call at the first step, make it current
# around each step, and pass ``send`` / ``throw`` / ``close`` through as the SDK's own generator would take them.


def observe_sync(inner: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    """The SDK's items, unchanged (minus any the observer hides), each observed; the call ends exactly once."""
    generator = _observe_sync(inner, observer)
    observer._generator = weakref.ref(generator)
    return generator


def _observe_sync(inner: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    # Every item of every stream passes here: `_arrived` is inlined (no frames, no lookups beyond the locals), and
    # an item of a kind the observer does not read is not handed to it (one attribute read, no call).
    call = observer.call
    observe = observer.observe
    kind_field = observer.kind_field
    observed_kinds = observer.observed_kinds
    clock = time.monotonic
    try:
        for item in inner:
            now = clock()
            if call.first_chunk_at is None:
                call.first_chunk_at = now
            call.last_chunk_at = now
            if kind_field is None:
                read = True
            else:
                try:
                    read = getattr(item, kind_field, None) in observed_kinds
                except Exception:  # an unhashable kind (a hostile answer): the observer reads the item itself
                    read = True
            if read:
                try:
                    keep = observe(item)
                except Exception as exc:
                    report("stream item", exc)
                    keep = True
                if not keep:
                    continue
            yield item
    except GeneratorExit:  # only the SDK's stream object holds this generator: it was collected
        # Abandoned first: closing the SDK's iterator closes its response (anthropic's does), which would read as
        # the user's own close() (`busy` cannot tell: a collected generator's weak references are already dead).
        try:
            observer.dropped()
        finally:
            inner.close()
        raise
    except BaseException as exc:
        observer.failed(exc)
        raise
    observer.ended()


def observe_async(inner: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    """The async twin of `observe_sync`.

    When collected, it leaves the SDK's generator alone: asyncio closes that one itself, and closing it from here
    too would race that (asyncio then logs "aclose(): asynchronous generator is already running").
    """
    generator = _observe_async(inner, observer)
    observer._generator = weakref.ref(generator)
    with contextlib.suppress(TypeError):  # not an async generator: only the observing generator runs it
        observer._inner = weakref.ref(inner)
    return generator


async def _observe_async(inner: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    call = observer.call
    observe = observer.observe
    kind_field = observer.kind_field
    observed_kinds = observer.observed_kinds
    clock = time.monotonic
    try:
        async for item in inner:
            now = clock()  # `_arrived`, inlined as in `_observe_sync`
            if call.first_chunk_at is None:
                call.first_chunk_at = now
            call.last_chunk_at = now
            if kind_field is None:
                read = True
            else:
                try:
                    read = getattr(item, kind_field, None) in observed_kinds
                except Exception:  # an unhashable kind (a hostile answer): the observer reads the item itself
                    read = True
            if read:
                try:
                    keep = observe(item)
                except Exception as exc:
                    report("stream item", exc)
                    keep = True
                if not keep:
                    continue
            yield item
    except GeneratorExit:
        observer.dropped()
        raise
    except BaseException as exc:
        observer.failed(exc)
        raise
    observer.ended()


def _step(inner: Iterator[Any], to_send: Any, to_throw: BaseException | None) -> Any:
    if to_throw is not None:
        return inner.throw(to_throw)
    return next(inner) if to_send is None else inner.send(to_send)


def observe_held_sync(inner: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    """The generator the user gets in place of the SDK's: the call starts at the first step (`begin`)."""
    if not observer.begin():
        return (yield from inner)
    call = observer.call
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            with call:
                item = _step(inner, to_send, to_throw)
        except StopIteration:
            observer.ended()
            return
        except BaseException as exc:
            observer.failed(exc)
            raise
        to_send = to_throw = None
        observer._arrived(item)
        try:
            to_send = yield item
        except GeneratorExit:  # the user closed it (if it was collected, its watcher has recorded that already)
            try:
                with call:
                    inner.close()
            finally:
                observer.closed()
            raise
        except BaseException as exc:
            to_throw = exc


async def observe_held_async(inner: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    """The async twin of `observe_held_sync` (``athrow`` reaches the SDK's generator)."""
    if not observer.begin():
        async for item in inner:
            yield item
        return
    call = observer.call
    to_throw: BaseException | None = None
    while True:
        try:
            with call:
                item = await (inner.__anext__() if to_throw is None else inner.athrow(to_throw))
        except StopAsyncIteration:
            observer.ended()
            return
        except BaseException as exc:
            observer.failed(exc)
            raise
        to_throw = None
        observer._arrived(item)
        try:
            yield item
        except GeneratorExit:
            try:
                if _closed_by_user(observer):  # when collected, asyncio closes the SDK's generator itself
                    with call:
                        await inner.aclose()  # type: ignore[attr-defined]
            finally:
                observer.closed()
            raise
        except BaseException as exc:
            to_throw = exc


def _closed_by_user(observer: StreamObserver) -> bool:
    """Collection runs an object's weakref callbacks (`watch`) before it closes a generator, so a generator
    closed while its watcher is still alive was closed by the user."""
    watcher = observer.watcher
    return watcher is None or watcher.alive


# -- where the call goes ------------------------------------------------------------------------------------------


class PerBaseURL(Generic[T]):
    """``resolve(url)`` computed once per base-URL object (a string, or an HTTP client's URL object).

    Clients keep their base URL object for life, so the cache is keyed by identity (and holds the object, so an
    identity is never reused while cached): a hit costs one dict lookup, no string is built. Bounded: it simply
    starts over when full.
    """

    def __init__(self, resolve: Callable[[str], T], *, size: int = 256) -> None:
        self._resolve = resolve
        self._size = size
        self._cache: dict[int, tuple[Any, T]] = {}

    def __call__(self, base_url: Any) -> T:
        key = id(base_url)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is base_url:
            return hit[1]
        value = self._resolve(str(base_url))
        if len(self._cache) >= self._size:
            self._cache = {}
        self._cache[key] = (base_url, value)
        return value


class Server(NamedTuple):
    """A base URL's server, as semconv ``server.address`` / ``server.port`` want it."""

    address: str | None
    port: int | None


def _parse_server(url: str) -> Server:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return Server(None, None)
    if not host:
        return Server(None, None)
    if port is None:
        port = 80 if parts.scheme == "http" else 443
    return Server(host, port)


server_of = PerBaseURL(_parse_server)
"""The server of a client's base URL (``None`` parts when it has none)."""
