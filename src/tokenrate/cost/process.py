"""The process-wide pricer: set up once (`configure_pricing`), used by the pipeline's cost enricher.

`price_record` is a pipeline enricher (`tokenrate.pipeline.add_enricher`): it returns the record with
``cost_usd`` set. Remote price updates are opt-in (``TOKENRATE_PRICES_AUTO_UPDATE=true`` starts genai-prices'
``UpdatePrices`` thread, which fetches from GitHub hourly); by default no network is used.
"""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import Any

from tokenrate._env import setting
from tokenrate._safety import report, warn_once
from tokenrate.cost.custom import load_price_file
from tokenrate.cost.pricer import ENV_PRICES, Pricer
from tokenrate.errors import PriceFileError
from tokenrate.records import CallRecord, record_with_cost

logger = logging.getLogger("tokenrate.cost")

ENV_AUTO_UPDATE = "TOKENRATE_PRICES_AUTO_UPDATE"

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
    cost = (_pricer or get_pricer()).cost(record)
    if cost is None:
        return record
    return record_with_cost(record, cost)


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
