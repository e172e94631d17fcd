"""genai-prices behind a small, fast, cached interface (genai-prices needs Python >= 3.11; may be missing).

Why not just call ``genai_prices.calc_price`` per call: it costs ~80 µs (usage validation, unit decomposition,
Decimal arithmetic) and re-raises `LookupError` for an unknown model on every call. Here:

* the (provider, model) lookup is resolved once and cached, misses included;
* a price is linear in the token counts up to its first tier (a tier applies to *all* tokens once a call's input
  passes its start, and a flat price has none), so its per-token coefficients are measured once *with
  genai-prices itself* (`_linear_coefficients`) and a call below the first tier is a dot product. A call past a
  tier, or a usage genai-prices might reject, takes the full genai-prices path.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tokenrate.records import TokenUsage

# Our vector of billable quantities, in this order. Parts (cache_*, tool_use, reasoning) are included in their
# totals (input, output), exactly as genai-prices wants them.
VECTOR_KEYS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_reasoning_tokens",
    "input_tool_tokens",
    "web_searches",
    "code_executions",
)
N_KEYS = len(VECTOR_KEYS)
I_INPUT, I_OUTPUT, I_CACHE_READ, I_CACHE_WRITE, I_REASONING, I_TOOL, I_WEB, I_CODE = range(N_KEYS)
TOKEN_TYPE_INDEX: dict[str, int] = {
    "input": I_INPUT,
    "output": I_OUTPUT,
    "cache_read": I_CACHE_READ,
    "cache_write": I_CACHE_WRITE,
    "reasoning": I_REASONING,
    "tool_use": I_TOOL,
}
"""Where each `tokenrate.records.TOKEN_TYPES` name goes in the vector (a test checks every type has a slot)."""

# gen_ai.provider.name (semconv) -> genai-prices provider id. Names not listed are tried as they are (genai-prices
# knows e.g. "groq", "deepseek", "mistral_ai" via its provider_match rules); unknown -> guess from the model.
PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws.bedrock": "aws",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
}

# Provider-side tool names (as adapters report them in CallRecord.server_tool_requests) -> genai-prices usage key.
SERVER_TOOL_KEYS: dict[str, int] = {
    "web_search": I_WEB,
    "web_searches": I_WEB,
    "web_search_requests": I_WEB,
    "code_execution": I_CODE,
    "code_executions": I_CODE,
    "code_execution_requests": I_CODE,
}

_CACHE_CAP = 4096
"""Distinct (provider, server, model) lookups kept; past this the cache is cleared (bounded memory)."""

_MISS = object()


class GenaiPrices:
    """Prices calls with genai-prices' bundled (or auto-updated) data. Thread-safe; all caches bounded."""

    def __init__(self) -> None:
        import genai_prices  # ImportError on Python 3.10: the caller falls back
        from genai_prices import data_snapshot, types

        self._data_snapshot = data_snapshot
        self.get_snapshot = data_snapshot.get_snapshot
        """genai-prices' current data; a lookup made with another snapshot is stale (`UpdatePrices` replaced it)."""
        self._types = types
        self._lock = threading.Lock()
        self._snapshot: Any = None
        self._lookups: dict[tuple[str, str | None, str], Any] = {}
        self._hosts: dict[str, Any] = {}
        self._linear: dict[int, tuple[Any, Linear]] = {}
        self.version = getattr(genai_prices, "__version__", "?")

    # -- lookups -------------------------------------------------------------------------------------------------

    def _current_snapshot(self) -> Any:
        snapshot = self._data_snapshot.get_snapshot()
        if snapshot is not self._snapshot:
            # New data (UpdatePrices fetched a snapshot): every cached lookup may be stale.
            with self._lock:
                self._snapshot = snapshot
                self._lookups = {}
                self._hosts = {}
                self._linear = {}
        return snapshot

    def resolve(self, provider: str, server_address: str | None, model: str) -> tuple[Any, Any] | None:
        """genai-prices' (Provider, ModelInfo) for a call, or None when it does not know the model."""
        snapshot = self._current_snapshot()
        key = (provider, server_address, model)
        found = self._lookups.get(key)
        if found is None:
            found = self._resolve_uncached(snapshot, provider, server_address, model)
            if len(self._lookups) >= _CACHE_CAP:
                self._lookups = {}
            self._lookups[key] = found
        return None if found is _MISS else found

    def _resolve_uncached(self, snapshot: Any, provider: str, server_address: str | None, model: str) -> Any:
        providers = snapshot.providers
        tried: set[str] = set()
        # 1. The server the SDK talked to (the OpenAI SDK also talks to OpenRouter, Groq, Azure, ...).
        by_host = self._provider_by_host(snapshot, server_address) if server_address else None
        if by_host is not None:
            tried.add(by_host.id)
            info = by_host.find_model(model, all_providers=providers)
            if info is not None:
                return by_host, info
        # 2. The provider name the adapter reported.
        provider_id = provider_id_for(provider)
        prov = None
        if provider_id is not None:
            prov = self._data_snapshot.find_provider_by_id(providers, provider_id)
        if prov is not None:
            if prov.id not in tried:
                info = prov.find_model(model, all_providers=providers)
                if info is not None:
                    return prov, info
            return _MISS  # a known provider without this model: do not guess another provider's price
        if by_host is not None:
            return _MISS
        # 3. Unknown provider: let genai-prices guess the provider from the model name.
        try:
            return snapshot.find_provider_model(model, None, None, None)
        except LookupError:
            return _MISS

    def _provider_by_host(self, snapshot: Any, server_address: str) -> Any:
        found = self._hosts.get(server_address, _MISS)
        if found is _MISS:
            url = f"https://{server_address}"
            found = None
            for prov in snapshot.providers:
                try:
                    if re.match(prov.api_pattern, url):
                        found = prov
                        break
                except re.error:
                    continue
            if len(self._hosts) >= _CACHE_CAP:
                self._hosts = {}
            self._hosts[server_address] = found
        return found

    # -- prices --------------------------------------------------------------------------------------------------

    def cost(self, resolved: tuple[Any, Any], vector: list[float], started_unix: float) -> float:
        """USD for one call; may raise ValueError when genai-prices rejects the usage."""
        prov, info = resolved
        prices = info.prices
        when = None
        if isinstance(prices, self._types.ModelPrice):
            model_price = prices  # what `get_prices` returns for a price with no dates: no clock to read
        else:
            when = datetime.fromtimestamp(started_unix, timezone.utc)
            model_price = info.get_prices(when)
        coefficients, constant, input_limit = self._coefficients(model_price)
        if coefficients is not None and vector[I_INPUT] <= input_limit and _consistent(vector):
            total = constant
            for a, v in zip(coefficients, vector, strict=True):
                if v:
                    total += a * v
            # Float sums of per-token prices carry ~1e-18 noise; nobody is billed below a picodollar.
            return round(total, 12)
        if when is None:
            when = datetime.fromtimestamp(started_unix, timezone.utc)
        return float(info.calc_price(self.usage(vector), prov, genai_request_timestamp=when).total_price)

    def linear_price(self, resolved: tuple[Any, Any]) -> LinearPrice | None:
        """The per-call dot product for a resolved model whose price needs no clock (no dates or hours) and is
        linear below its first tier; None otherwise (every call then takes `cost`)."""
        prices = resolved[1].prices
        if not isinstance(prices, self._types.ModelPrice):
            return None
        coefficients, constant, input_limit = self._coefficients(prices)
        if coefficients is None:
            return None
        return LinearPrice(resolved, constant, input_limit, *coefficients)

    def usage(self, vector: list[float]) -> Any:
        """The genai-prices `Usage` for our vector (input and output always given, parts only when > 0)."""
        values = {key: int(v) for key, v in zip(VECTOR_KEYS, vector, strict=True) if v}
        values.setdefault("input_tokens", 0)
        values.setdefault("output_tokens", 0)
        return self._types.Usage(**values)

    def _coefficients(self, model_price: Any) -> Linear:
        cached = self._linear.get(id(model_price))
        if cached is not None and cached[0] is model_price:
            return cached[1]
        linear = _linear_coefficients(model_price, self._types)
        with self._lock:
            if len(self._linear) >= _CACHE_CAP:
                self._linear = {}
            # Keep model_price referenced so its id() cannot be reused by another object.
            self._linear[id(model_price)] = (model_price, linear)
        return linear


def provider_id_for(provider: str) -> str | None:
    """genai-prices provider id for a ``gen_ai.provider.name`` (None: let genai-prices guess from the model)."""
    mapped = PROVIDER_IDS.get(provider)
    if mapped is not None:
        return mapped
    return provider or None


def _consistent(vector: list[float]) -> bool:
    """Parts fit inside their totals (otherwise genai-prices decides: it may reject the usage)."""
    return (
        vector[I_CACHE_READ] + vector[I_CACHE_WRITE] + vector[I_TOOL] <= vector[I_INPUT]
        and vector[I_REASONING] <= vector[I_OUTPUT]
    )


class LinearPrice(NamedTuple):
    """A model's price as `GenaiPrices.cost` computes it below its first tier, ready for `linear_cost`."""

    resolved: tuple[Any, Any]
    """genai-prices' (Provider, ModelInfo): for a call the dot product does not cover."""
    constant: float
    input_limit: float
    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float
    tool_use: float
    web_searches: float
    code_executions: float


def linear_cost(price: LinearPrice, usage: TokenUsage, tools: Mapping[str, int]) -> float | None:
    """`GenaiPrices.cost` of one call, to the float, without building its vector: the same products added in the
    same order (`VECTOR_KEYS`), zeros skipped. ``tools`` are the call's server tool requests. None when the call
    is past the first tier or its parts do not fit in their totals: `GenaiPrices.cost` decides those."""
    _, total, input_limit, a_in, a_out, a_read, a_write, a_reason, a_tool, a_web, a_code = price
    # A part counts only with its total known (as in `tokenrate.cost.pricer._vector`).
    inp = usage.input
    if inp is None:
        inp = read = write = tool = 0
    else:
        read = usage.cache_read or 0
        write = usage.cache_write or 0
        tool = usage.tool_use or 0
    out = usage.output
    if out is None:
        out = reason = 0
    else:
        reason = usage.reasoning or 0
    if inp > input_limit or read + write + tool > inp or reason > out:
        return None
    if inp:
        total += a_in * inp
    if out:
        total += a_out * out
    if read:
        total += a_read * read
    if write:
        total += a_write * write
    if reason:
        total += a_reason * reason
    if tool:
        total += a_tool * tool
    if tools:
        web = code = 0
        for name, count in tools.items():
            index = SERVER_TOOL_KEYS.get(name)
            if index is not None and count:
                if index == I_WEB:
                    web += count
                else:
                    code += count
        if web:
            total += a_web * web
        if code:
            total += a_code * code
    # round(total, 12) to the float, for about half its price (round with digits formats decimal digits): the
    # float product total * 1e12 is within 1/16 of the exact one, so unless its fraction is near one half, the
    # integer nearest to it is the one the exact decimal rounding picks, and that (exact) integer divided by the
    # (exact) 1e12 is the float nearest to the rounded decimal, which is what round returns. Near a half, or out
    # of that range, round itself decides.
    scaled = total * _PICO
    if 0.0 <= scaled < _EXACT_BELOW:
        fraction = scaled % 1.0
        if fraction < 0.25:
            return (scaled - fraction) / _PICO
        if fraction > 0.75:
            return (scaled - fraction + 1.0) / _PICO
    return round(total, 12)


_PICO = 1e12
_EXACT_BELOW = float(2**50)
"""Below this, ``x * 1e12`` is within 1/16 of the exact product (its ulp is at most 1/8)."""


Linear = tuple[tuple[float, ...] | None, float, float]
"""(per-unit coefficients or None, constant per request, the largest total input they hold for)."""

_NOT_LINEAR: Linear = (None, 0.0, -1.0)

# Probe points for the coefficients, in units of `unit` tokens (requests as they are): every part strictly inside
# its total, so each may grow by one step alone, and no input past 9 units (inside the first tier's start).
_BASE = (8, 4, 1, 1, 1, 1, 10, 10)
_CHECK = (5, 3, 2, 0.5, 2, 0.7, 3, 7)
_REQUEST_KEYS = (I_WEB, I_CODE)
_REQUEST_STEP = 1_000
_FLAT_UNIT = 1_000_000


def _first_tier_start(model_price: Any, types: Any) -> float:
    """The input total past which some tier applies (a tier's rate covers every token once input > its start)."""
    starts = [
        tier.start
        for value in vars(model_price).values()
        if isinstance(value, types.TieredPrices)
        for tier in value.tiers
    ]
    return min(starts) if starts else float("inf")


def _linear_coefficients(model_price: Any, types: Any) -> Linear:
    """Per-unit USD coefficients of a price below its first tier, measured with genai-prices' own arithmetic.

    Below every tier a price is linear in the usage (leaf counts are differences of the reported counts, each
    priced per unit, plus a constant per-request charge), so cost(v) = constant + sum(a_k * v_k) while the input
    total stays at or below the first tier's start. The result is checked at a second point and at that start;
    anything that does not fit (a usage genai-prices rejects, a tier too low to probe under) gives no
    coefficients: the full path.
    """
    input_limit = _first_tier_start(model_price, types)
    unit = _FLAT_UNIT if input_limit == float("inf") else int(input_limit) // 10
    if unit < 10:
        return _NOT_LINEAR

    def scaled(point: tuple[float, ...]) -> tuple[int, ...]:
        return tuple(int(v) if k in _REQUEST_KEYS else int(v * unit) for k, v in enumerate(point))

    def price(vector: tuple[int, ...]) -> Decimal:
        values = {key: v for key, v in zip(VECTOR_KEYS, vector, strict=True) if v}
        values.setdefault("input_tokens", 0)
        values.setdefault("output_tokens", 0)
        return Decimal(model_price.calc_price(types.Usage(**values))["total_price"])

    base_point = scaled(_BASE)
    check_points = [scaled(_CHECK), base_point]
    if input_limit != float("inf"):
        check_points.append((int(input_limit), unit) + (0,) * (N_KEYS - 2))  # at the start: still below the tier
    try:
        constant = price((0,) * N_KEYS)
        base = price(base_point)
        exact: list[Decimal] = []
        for k in range(N_KEYS):
            step = _REQUEST_STEP if k in _REQUEST_KEYS else unit
            bumped = list(base_point)
            bumped[k] += step
            # Growing a part alone is still valid: the total's own leaf shrinks but stays >= 0.
            exact.append((price(tuple(bumped)) - base) / step)
        expected = [price(point) for point in check_points]
    except (ValueError, ArithmeticError, TypeError):
        return _NOT_LINEAR
    for point, want in zip(check_points, expected, strict=True):
        got = constant + sum((a * v for a, v in zip(exact, point, strict=True)), Decimal(0))
        if abs(got - want) > Decimal("1e-9") * max(Decimal(1), abs(want)):
            return _NOT_LINEAR
    return tuple(float(a) for a in exact), float(constant), input_limit
