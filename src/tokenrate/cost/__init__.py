"""The cost stage: every finished call gets ``cost_usd``, offline, from genai-prices or a custom price file.

`price_record` is a pipeline enricher (`tokenrate.pipeline.add_enricher`): it returns the record with
``cost_usd`` set. Rules, in order:

1. No token counts at all (neither input nor output known):

   * ``0.0`` when the call certainly was not billed: it failed with an HTTP error status (>= 400: providers do
     not bill rejected requests) or it was never sent (``CallRejected``, e.g. an enforced budget);
   * otherwise ``None`` (unknown): a timeout, a dropped connection or a stream closed early may still have
     been billed, so 0 would be a guess.

2. Otherwise the price comes from, in order: a custom price file entry (``TOKENRATE_PRICES``; wins for the
   models it names), then genai-prices (Python >= 3.11, bundled data; the provider is found from the server
   address the SDK talked to, then from ``gen_ai.provider.name``). The response model is tried first, then the
   request model. A missing count is priced as 0 when the other total is known (embeddings report no output).

3. A model nobody prices has an **unknown** cost (``None``, never 0). Such calls are counted by
   (provider, model) in `unknown_cost_calls` and logged once per model.

Remote price updates are opt-in (``TOKENRATE_PRICES_AUTO_UPDATE=true`` starts genai-prices' ``UpdatePrices``
thread, which fetches from GitHub hourly); by default no network is used.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenrate._env import setting
from tokenrate._safety import report, warn_once
from tokenrate.cost._genai import (
    I_CACHE_READ,
    I_CACHE_WRITE,
    I_INPUT,
    I_OUTPUT,
    I_REASONING,
    I_TOOL,
    N_KEYS,
    SERVER_TOOL_KEYS,
    provider_id_for,
)
from tokenrate.cost.custom import CustomPrice, CustomPrices, load_price_file
from tokenrate.errors import PriceFileError

if TYPE_CHECKING:
    from tokenrate.cost._genai import GenaiPrices
    from tokenrate.records import CallRecord

__all__ = [
    "CustomPrice",
    "CustomPrices",
    "PriceFileError",
    "Pricer",
    "configure_from_env",
    "configure_pricing",
    "configure_pricing_from_env",
    "get_pricer",
    "load_price_file",
    "price_record",
    "unknown_cost_calls",
]

logger = logging.getLogger("tokenrate.cost")

ENV_PRICES = "TOKENRATE_PRICES"
ENV_AUTO_UPDATE = "TOKENRATE_PRICES_AUTO_UPDATE"

_NOT_SENT_ERRORS = frozenset({"CallRejected", "BudgetExceededError"})
_UNKNOWN_KEYS_CAP = 256
"""Distinct (provider, model) pairs counted in `unknown_cost_calls`; the rest go under (provider, "<other>")."""
_CACHE_CAP = 4096

_CUSTOM = "custom"
_GENAI = "genai"
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
        self._unknown: dict[tuple[str, str | None], int] = {}

    # -- public ----------------------------------------------------------------------------------------------

    def cost(self, record: CallRecord) -> float | None:
        """USD for one call, or None when unknown. Never raises for a well-formed record."""
        usage = record.usage
        if usage.input is None and usage.output is None:
            return 0.0 if _not_billed(record) else None
        info = record.info
        kind, found = self._resolve(info.provider, info.server_address, record.response_model, info.request_model)
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
                    return _GENAI, resolved
        return _NONE

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
            "Price it in a %s file (see docs/cost.md).",
            names,
            provider,
            ENV_PRICES,
        )


def _not_billed(record: CallRecord) -> bool:
    if record.error_type is None:
        return False
    if record.error_type in _NOT_SENT_ERRORS:
        return True
    return record.status_code is not None and record.status_code >= 400


def _vector(record: CallRecord) -> list[float]:
    """The billable quantities in `tokenrate.cost._genai.VECTOR_KEYS` order; a part counts only with its total."""
    usage = record.usage
    vector = [0] * N_KEYS
    if usage.input is not None:
        vector[I_INPUT] = usage.input
        vector[I_CACHE_READ] = usage.cache_read or 0
        vector[I_CACHE_WRITE] = usage.cache_write or 0
        vector[I_TOOL] = usage.tool_use or 0
    if usage.output is not None:
        vector[I_OUTPUT] = usage.output
        vector[I_REASONING] = usage.reasoning or 0
    if record.server_tool_requests:
        for tool, count in record.server_tool_requests.items():
            index = SERVER_TOOL_KEYS.get(tool)
            if index is not None and count:
                vector[index] += count
    return vector


# -- the process-wide pricer -----------------------------------------------------------------------------------

_pricer: Pricer | None = None
_pricer_lock = threading.Lock()
_updater: Any = None


def get_pricer() -> Pricer:
    """The process-wide `Pricer` (created on first use with no custom prices)."""
    global _pricer
    if _pricer is None:
        with _pricer_lock:
            if _pricer is None:
                _pricer = Pricer()
    return _pricer


def set_pricer(pricer: Pricer | None) -> None:
    """Replace the process-wide pricer (None: a fresh default one on next use). Mostly for tests."""
    global _pricer
    with _pricer_lock:
        _pricer = pricer


def price_record(record: CallRecord) -> CallRecord:
    """Pipeline enricher: the record with ``cost_usd`` set (left alone if something already priced it)."""
    if record.cost_usd is not None:
        return record
    cost = get_pricer().cost(record)
    if cost is None:
        return record
    return dataclasses.replace(record, cost_usd=cost)


def unknown_cost_calls() -> dict[tuple[str, str | None], int]:
    """Calls with an unknown cost so far, by (provider, model)."""
    return get_pricer().unknown_cost_calls()


def configure_pricing(
    *,
    prices_path: str | Path | None = None,
    auto_update: bool = False,
    warm: bool = True,
    register: bool = True,
) -> Pricer:
    """Set up the process-wide pricer: custom prices (errors logged once, file ignored), optional remote updates.

    ``warm`` loads genai-prices in a background thread so the first call does not pay for it; ``register``
    adds `price_record` to the pipeline's enrichers.
    """
    custom = None
    if prices_path is not None:
        try:
            custom = load_price_file(prices_path)
            logger.info("tokenrate: %d custom price(s) loaded from %s", len(custom), prices_path)
        except PriceFileError as exc:
            warn_once(
                f"cost:pricefile:{prices_path}",
                "tokenrate: %s. Carrying on without these custom prices.",
                exc,
            )
    pricer = Pricer(custom)
    set_pricer(pricer)
    if auto_update:
        _start_auto_update()
    if warm:
        _import_shared_dependencies()
        threading.Thread(target=_warm, args=(pricer,), name="tokenrate-prices-warmup", daemon=True).start()
    if register:
        from tokenrate.pipeline import add_enricher

        add_enricher(price_record)
    return pricer


def configure_pricing_from_env() -> Pricer:
    """`configure_pricing` from ``TOKENRATE_PRICES`` and ``TOKENRATE_PRICES_AUTO_UPDATE``."""
    return configure_pricing(
        prices_path=setting(ENV_PRICES),
        auto_update=setting(ENV_AUTO_UPDATE),
    )


def configure_from_env(*, force: bool = False) -> Any:
    """Set up pricing, the ledger and budgets from ``TOKENRATE_*`` (idempotent); see `tokenrate.budget`."""
    from tokenrate.budget import configure_from_env as configure

    return configure(force=force)


def _import_shared_dependencies() -> None:
    """Import, on this thread, what genai-prices shares with the SDKs, before the warm-up imports it.

    A module half-imported by the warm-up thread must never be seen by the user's code: some SDK releases (e.g.
    openai 2.47-2.54) look ``httpx2`` up in ``sys.modules`` instead of importing it, and fail on a partial module.
    """
    for name in ("httpx2",):
        try:
            importlib.import_module(name)
        except Exception:  # not installed: nothing is shared, nothing to do
            continue


def _warm(pricer: Pricer) -> None:
    try:
        pricer.warm_up()
    except Exception as exc:
        report("cost: warming up genai-prices", exc)


def _start_auto_update() -> None:
    global _updater
    if _updater is not None:
        return
    try:
        from genai_prices import UpdatePrices
    except ImportError:
        warn_once(
            "cost:autoupdate-missing",
            "tokenrate: %s=true needs genai-prices (Python >= 3.11); no remote price updates.",
            ENV_AUTO_UPDATE,
        )
        return
    try:
        updater = UpdatePrices()
        updater.start()
        _updater = updater
        logger.info("tokenrate: genai-prices will refresh prices from the network in the background (hourly)")
    except Exception as exc:
        report("cost: starting genai-prices UpdatePrices", exc)
