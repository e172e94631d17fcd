"""The simulator's rate-limit model: continuously refilled token buckets per (protocol, model).

Kept free of HTTP so its arithmetic can be unit-tested with an injected clock, without sleeping.
"""

from __future__ import annotations

import math
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

KINDS: tuple[str, ...] = ("requests", "tokens", "input_tokens", "output_tokens")

MAX_KEYS = 1024
"""Distinct (protocol, model) keys kept; the least recently used is forgotten beyond this (bounded memory)."""


@dataclass(frozen=True)
class RateLimitModel:
    """Limits per minute, applied per (protocol, model); plus overloads, latency and streaming speed.

    ``input_tpm`` / ``output_tpm`` (Anthropic's separate input and output windows) default to ``tpm``, in which
    case the combined ``tokens`` window is always the binding one.
    """

    rpm: int = 60
    tpm: int = 40_000
    overload_rate: float = 0.0
    """Probability that a request starts an overload burst (answered 529; Gemini 503), seeded by ``seed``."""
    latency_s: float = 0.0
    """Seconds before the first byte of a successful answer."""
    tokens_per_second: float | None = None
    """Generation speed: streams pace their chunks by it, non-streamed answers wait output/speed."""
    seed: int = 0
    input_tpm: int | None = None
    output_tpm: int | None = None
    overload_burst: int = 2
    """How many consecutive requests to the same key one overload answers with 529."""

    def __post_init__(self) -> None:
        if self.rpm <= 0 or self.tpm <= 0:
            raise ValueError("rpm and tpm must be > 0")
        if not 0.0 <= self.overload_rate <= 1.0:
            raise ValueError("overload_rate must be within [0, 1]")
        if self.latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError("tokens_per_second must be > 0")
        if self.overload_burst < 1:
            raise ValueError("overload_burst must be >= 1")

    def limit(self, kind: str) -> int:
        if kind == "requests":
            return self.rpm
        if kind == "input_tokens":
            return self.input_tpm or self.tpm
        if kind == "output_tokens":
            return self.output_tpm or self.tpm
        return self.tpm


GENEROUS = RateLimitModel(rpm=10_000, tpm=10_000_000)
"""Reported (never enforced) when the simulator runs without a rate-limit model."""


@dataclass(frozen=True)
class Window:
    """One window's state as the headers report it."""

    limit: int
    remaining: int
    reset_s: float
    """Seconds until the window is full again."""


@dataclass(frozen=True)
class Admission:
    """The model's verdict on one request."""

    allowed: bool
    windows: dict[str, Window]
    reason: str | None = None
    """Why it was refused: ``"overloaded"`` or the exhausted window kind (``"requests"``, ``"tokens"``, ...)."""
    retry_after_s: float | None = None
    """Seconds until enough capacity has refilled, rounded up to the millisecond (for 429s)."""


class _Bucket:
    """A token bucket refilled continuously at capacity per minute.

    With ``fixed_window`` it is instead a per-minute counter that is full again when its minute is over: the
    report-only mode uses that so generous limits still visibly count down, request by request.
    """

    __slots__ = ("capacity", "fixed_window", "level", "updated", "window_start")

    def __init__(self, capacity: float, now: float, *, fixed_window: bool = False) -> None:
        self.capacity = float(capacity)
        self.level = float(capacity)
        self.updated = now
        self.fixed_window = fixed_window
        self.window_start = now

    @property
    def rate(self) -> float:
        return self.capacity / 60.0

    def refill(self, now: float) -> None:
        if self.fixed_window:
            if now - self.window_start >= 60.0:
                self.level, self.window_start = self.capacity, now
        elif now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def seconds_until(self, amount: float) -> float:
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def window(self, *, exhausted: bool = False) -> Window:
        remaining = 0 if exhausted else max(0, math.floor(self.level + 1e-9))
        if self.fixed_window:
            reset = 0.0 if self.level >= self.capacity else 60.0 - (self.updated - self.window_start)
        else:
            reset = max(0.0, self.capacity - self.level) / self.rate
        return Window(int(self.capacity), remaining, _ceil_ms(reset))


def _ceil_ms(seconds: float) -> float:
    """Round up to the millisecond, forgiving float noise (0.15000000000000002 s is 150 ms)."""
    return math.ceil(seconds * 1000.0 - 1e-6) / 1000.0


class RateLimiter:
    """Token buckets for requests, tokens, input and output tokens, per (protocol, model) key.

    ``enforce=False`` only tracks and reports (used when no model is configured): nothing is ever refused, the
    windows are per-minute counters (so every request visibly counts down) and levels stop at 0.
    """

    def __init__(self, model: RateLimitModel, clock: Callable[[], float], *, enforce: bool = True) -> None:
        self.model = model
        self.enforce = enforce
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[tuple[str, str], dict[str, _Bucket]] = OrderedDict()
        self._overload_left: dict[tuple[str, str], int] = {}
        self._rng = random.Random(model.seed)

    def _get(self, key: tuple[str, str], now: float) -> dict[str, _Bucket]:
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = {kind: _Bucket(self.model.limit(kind), now, fixed_window=not self.enforce) for kind in KINDS}
            self._buckets[key] = buckets
            while len(self._buckets) > MAX_KEYS:
                old, _ = self._buckets.popitem(last=False)
                self._overload_left.pop(old, None)
        else:
            self._buckets.move_to_end(key)
        for bucket in buckets.values():
            bucket.refill(now)
        return buckets

    def admit(self, key: tuple[str, str], input_tokens: int, output_tokens: int) -> Admission:
        """Decide whether a request may be served now and, if so, charge it (1 request, its tokens)."""
        with self._lock:
            now = self._clock()
            buckets = self._get(key, now)
            if self.enforce and self.model.overload_rate > 0:
                left = self._overload_left.get(key, 0)
                if left <= 0 and self._rng.random() < self.model.overload_rate:
                    left = self.model.overload_burst
                if left > 0:
                    self._overload_left[key] = left - 1
                    return Admission(False, _windows(buckets), reason="overloaded")
            needs = _needs(input_tokens, output_tokens)
            if self.enforce:
                waits = {
                    kind: buckets[kind].seconds_until(min(amount, buckets[kind].capacity))
                    for kind, amount in needs.items()
                }
                blocking = [kind for kind in KINDS if waits[kind] > 0]
                if blocking:
                    wait = _ceil_ms(max(waits.values()))
                    return Admission(
                        False, _windows(buckets, exhausted=blocking), reason=blocking[0], retry_after_s=wait
                    )
            self._charge(buckets, needs)
            return Admission(True, _windows(buckets))

    def charge(self, key: tuple[str, str], input_tokens: int, output_tokens: int) -> dict[str, Window]:
        """Charge a request served regardless of the model (a scripted answer); returns the windows after."""
        with self._lock:
            buckets = self._get(key, self._clock())
            self._charge(buckets, _needs(input_tokens, output_tokens))
            return _windows(buckets)

    def windows(self, key: tuple[str, str], *, exhausted: tuple[str, ...] = ()) -> dict[str, Window]:
        """The current state of a key's windows, without charging anything."""
        with self._lock:
            return _windows(self._get(key, self._clock()), exhausted=exhausted)

    def _charge(self, buckets: dict[str, _Bucket], needs: dict[str, int]) -> None:
        for kind, amount in needs.items():
            bucket = buckets[kind]
            bucket.level -= amount
            if not self.enforce:
                bucket.level = max(0.0, bucket.level)


def _needs(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "requests": 1,
        "tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
    }


def _windows(buckets: dict[str, _Bucket], *, exhausted: tuple[str, ...] | list[str] = ()) -> dict[str, Window]:
    return {kind: bucket.window(exhausted=kind in exhausted) for kind, bucket in buckets.items()}


# -- header formats --------------------------------------------------------------------------------------------


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String()`` at millisecond precision: ``1h2m3.5s``, ``6m0s``, ``20ms``.

    OpenAI's ``x-ratelimit-reset-*`` headers use this format.
    """
    ms = max(0, math.ceil(seconds * 1000.0 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    text = f"{secs}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def proto_duration(seconds: float) -> str:
    """Format a ``google.protobuf.Duration`` as JSON does: ``"1s"``, ``"0.250s"`` → ``"0.25s"``."""
    ms = max(0, math.ceil(seconds * 1000.0 - 1e-6))
    secs, millis = divmod(ms, 1000)
    return (f"{secs}.{millis:03d}".rstrip("0").rstrip(".") if millis else str(secs)) + "s"
