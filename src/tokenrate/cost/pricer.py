"""`Pricer`: one call's cost in USD from its tokens by type, with genai-prices or a custom price file.

The rules (what is 0, what is unknown, which model name is tried first) are in `tokenrate.cost`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tokenrate._docs import doc_url
from tokenrate._safety import report, warn_once
from tokenrate.cost._genai import N_KEYS, SERVER_TOOL_KEYS, TOKEN_TYPE_INDEX, linear_cost, provider_id_for
from tokenrate.cost.custom import CustomPrice, CustomPrices
from tokenrate.records import PART_OF, TOKEN_TYPES

if TYPE_CHECKING:
    from tokenrate.cost._genai import GenaiPrices
    from tokenrate.records import CallRecord

ENV_PRICES = "TOKENRATE_PRICES"

_NOT_SENT_ERRORS = frozenset({"CallRejected", "BudgetExceededError"})
_UNKNOWN_KEYS_CAP = 256
"""Distinct (provider, model) pairs counted in `unknown_cost_calls`; the rest go under (provider, "<other>")."""
_CACHE_CAP = 4096

_CUSTOM = "custom"
_GENAI = "genai"
_LINEAR = "linear"
_NONE: tuple[str, Any] = ("none", None)


class Pricer:
    """Prices `CallRecord`s. Thread-safe; every cache is bounded. One per process is normal (`get_pricer`)."""

    def __init__(self, custom: CustomPrices | None = None, *, use_genai_prices: bool = True) -> None:
        self.custom = custom
        self._use_genai = use_genai_prices
        self._genai: GenaiPrices | None = None
        self._genai_state = "unloaded"  # unloaded | loaded | missing
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, str | None, str | None, str | None], tuple[str, Any]] = {}
        self._snapshot: Any = None
        """The genai-prices data `_resolved` was filled from (its entries are stale once the data changes)."""
        self._unknown: dict[tuple[str, str | None], int] = {}

    # -- public ----------------------------------------------------------------------------------------------

    def cost(self, record: CallRecord) -> float | None:
        """USD for one call, or None when unknown. Never raises for a well-formed record."""
        usage = record.usage
        if usage.input is None and usage.output is None:
            return 0.0 if _not_billed(record) else None
        info = record.info
        backend = self._genai
        if backend is not None and backend.get_snapshot() is not self._snapshot:
            self._forget_lookups()
        key = (info.provider, info.server_address, record.response_model, info.request_model)
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolve(*key)
        kind, found = resolved
        if kind is _LINEAR:
            # Every call of a model genai-prices prices by the token, with no clock: one dot product.
            cost = linear_cost(found, usage, record.server_tool_requests)
            if cost is not None:
                return cost
            kind, found = _GENAI, found.resolved
        if kind == _CUSTOM:
            price: CustomPrice = found
            return price.cost(
                input_tokens=usage.input or 0,
                output_tokens=usage.output or 0,
                cache_read_tokens=(usage.cache_read or 0) if usage.input is not None else 0,
                cache_write_tokens=(usage.cache_write or 0) if usage.input is not None else 0,
                server_tool_requests=record.server_tool_requests,
            )
        if kind == _GENAI:
            backend = self._genai
            assert backend is not None
            try:
                return backend.cost(found, _vector(record), record.started_unix)
            except Exception as exc:  # genai-prices rejected the usage (e.g. a part larger than its total)
                report(f"cost: genai-prices for {info.provider} {found[1].id}", exc)
                self._count_unknown(info.provider, record.response_model or info.request_model)
                return None
        self._count_unknown(info.provider, record.response_model or info.request_model)
        self._warn_unknown(info.provider, record.response_model, info.request_model)
        return None

    def unknown_cost_calls(self) -> dict[tuple[str, str | None], int]:
        """Calls whose cost is unknown, by (provider, model); model None = the call named no model."""
        with self._lock:
            return dict(self._unknown)

    def warm_up(self) -> None:
        """Load genai-prices and its data now (≈0.2 s) rather than on the first call."""
        backend = self._backend()
        if backend is not None:
            backend.resolve("openai", None, "gpt-4o")

    @property
    def genai_prices_available(self) -> bool:
        return self._backend() is not None

    # -- lookups -----------------------------------------------------------------------------------------------

    def _resolve(
        self, provider: str, server: str | None, response_model: str | None, request_model: str | None
    ) -> tuple[str, Any]:
        key = (provider, server, response_model, request_model)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve_uncached(provider, server, response_model, request_model)
            with self._lock:
                if len(self._resolved) >= _CACHE_CAP:
                    self._resolved = {}
                self._resolved[key] = found
        return found

    def _resolve_uncached(
        self, provider: str, server: str | None, response_model: str | None, request_model: str | None
    ) -> tuple[str, Any]:
        models = [m for m in (response_model, request_model) if m]
        if len(models) == 2 and models[0] == models[1]:
            models.pop()
        if not models:
            return _NONE
        if self.custom:
            names = tuple(n.lower() for n in (provider, provider_id_for(provider)) if n)
            for model in models:
                entry = self.custom.find(names, model)
                if entry is not None:
                    return _CUSTOM, entry
        backend = self._backend()
        if backend is not None:
            for model in models:
                resolved = backend.resolve(provider, server, model)
                if resolved is not None:
                    linear = backend.linear_price(resolved)
                    return (_GENAI, resolved) if linear is None else (_LINEAR, linear)
        return _NONE

    def _forget_lookups(self) -> None:
        """New genai-prices data (``UpdatePrices`` fetched it): resolve every model again, against it."""
        backend = self._genai
        assert backend is not None
        with self._lock:
            self._resolved = {}
            self._snapshot = backend.get_snapshot()

    def _backend(self) -> GenaiPrices | None:
        if self._genai_state == "unloaded":
            with self._lock:
                if self._genai_state == "unloaded":
                    # The state changes only once loading is over: a call arriving while another thread (the
                    # warm-up) loads waits for it here, instead of seeing "missing" and caching a wrong unknown.
                    state = "missing"
                    if self._use_genai:
                        try:
                            from tokenrate.cost._genai import GenaiPrices

                            self._genai = GenaiPrices()
                            state = "loaded"
                        except ImportError as exc:
                            warn_once(
                                "cost:genai-prices-missing",
                                "tokenrate: genai-prices is not available (%s; it needs Python >= 3.11), so costs "
                                "are known only for models in a %s price file; other calls have an unknown cost.",
                                exc,
                                ENV_PRICES,
                            )
                        except Exception as exc:
                            report("cost: loading genai-prices", exc)
                    self._genai_state = state
        return self._genai

    def _count_unknown(self, provider: str, model: str | None) -> None:
        key = (provider, model)
        with self._lock:
            if key not in self._unknown and len(self._unknown) >= _UNKNOWN_KEYS_CAP:
                key = (provider, "<other>")
            self._unknown[key] = self._unknown.get(key, 0) + 1

    def _warn_unknown(self, provider: str, response_model: str | None, request_model: str | None) -> None:
        if self._genai_state != "loaded":
            return  # the one "genai-prices is not available" warning covers it
        model = response_model or request_model
        if model is None:
            warn_once(
                f"cost:nomodel:{provider}",
                "tokenrate: a %s call named no model, so its cost is unknown (recorded as unknown, not 0).",
                provider,
            )
            return
        names = " / ".join(dict.fromkeys(m for m in (response_model, request_model) if m))
        warn_once(
            f"cost:unknown:{provider}:{model}",
            "tokenrate: no price known for model %r (provider %s); its calls have an unknown cost (not 0). "
            "Price it in a %s file (see %s).",
            names,
            provider,
            ENV_PRICES,
            doc_url("docs/cost.md", "custom-prices-tokenrate_prices"),
        )


def _not_billed(record: CallRecord) -> bool:
    if record.error_type is None:
        return False
    if record.error_type in _NOT_SENT_ERRORS:
        return True
    return record.status_code is not None and record.status_code >= 400


_VECTOR_SLOTS: tuple[tuple[int, int, int], ...] = tuple(
    (TOKEN_TYPE_INDEX[name], i, TOKEN_TYPES.index(PART_OF.get(name, name))) for i, name in enumerate(TOKEN_TYPES)
)
"""(vector index, position of the type, position of its billed total) for every token type."""


def _vector(record: CallRecord) -> list[float]:
    """The billable quantities in `tokenrate.cost._genai.VECTOR_KEYS` order; a part counts only with its total."""
    values = record.usage.as_tuple()
    vector = [0] * N_KEYS
    for index, position, total in _VECTOR_SLOTS:
        if values[total] is not None:
            vector[index] = values[position] or 0
    if record.server_tool_requests:
        for tool, count in record.server_tool_requests.items():
            index = SERVER_TOOL_KEYS.get(tool)
            if index is not None and count:
                vector[index] += count
    return vector
