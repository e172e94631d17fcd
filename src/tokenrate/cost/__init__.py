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

Remote price updates are opt-in (``TOKENRATE_PRICES_AUTO_UPDATE=true``); by default no network is used.

Modules: `tokenrate.cost.pricer` (the rules), `tokenrate.cost.process` (the process-wide pricer and its set-up),
`tokenrate.cost.custom` (price files), `tokenrate.cost._genai` (genai-prices behind a cache).
"""

from __future__ import annotations

from tokenrate.cost.custom import CustomPrice, CustomPrices, load_price_file
from tokenrate.cost.pricer import Pricer
from tokenrate.cost.process import (
    configure_pricing,
    configure_pricing_from_env,
    get_pricer,
    price_record,
    set_pricer,
    unknown_cost_calls,
)
from tokenrate.errors import PriceFileError

__all__ = [
    "CustomPrice",
    "CustomPrices",
    "PriceFileError",
    "Pricer",
    "configure_pricing",
    "configure_pricing_from_env",
    "get_pricer",
    "load_price_file",
    "price_record",
    "set_pricer",
    "unknown_cost_calls",
]
