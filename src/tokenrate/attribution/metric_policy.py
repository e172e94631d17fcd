"""Which call attributes may become metric attributes, and how many distinct values each may take.

Every distinct value of a metric attribute is a new time series in the user's backend, so metrics carry only
the keys the user allow-lists (``TOKENRATE_METRIC_ATTRIBUTES=user.id,tokenrate.feature``; default: none), and
each key at most ``TOKENRATE_METRIC_ATTRIBUTE_LIMIT`` distinct values (default 100) per process. Later values
are recorded as `OVERFLOW_VALUE`, with one WARNING per key. Spans, the ledger and the local view are not
limited by this: they hold per-call data anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tokenrate._safety import logger

OVERFLOW_VALUE = "_other"
DEFAULT_LIMIT = 100

PickedAttributes = tuple[tuple[str, str], ...]
"""Allow-listed (key, value) pairs in allow-list order: hashable, so metric attribute sets can be cached."""


class MetricAttributePolicy:
    """The allow-list and its per-key cardinality guard. Thread-safe; memory bounded by keys x limit."""

    def __init__(self, keys: tuple[str, ...] = (), limit: int = DEFAULT_LIMIT) -> None:
        self.keys = tuple(dict.fromkeys(keys))
        self.limit = max(1, int(limit))
        self._seen: dict[str, set[str]] = {key: set() for key in self.keys}
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def pick(self, attributes: Mapping[str, str]) -> PickedAttributes:
        """The allow-listed attributes of a call, each value admitted by the guard (or `OVERFLOW_VALUE`)."""
        if not self.keys or not attributes:
            return ()
        picked = []
        for key in self.keys:
            value = attributes.get(key)
            if value is not None:
                picked.append((key, self.admit(key, value)))
        return tuple(picked)

    def admit(self, key: str, value: str) -> str:
        """``value`` while ``key`` has fewer than `limit` distinct values (or already had this one)."""
        seen = self._seen.get(key)
        if seen is None:
            return value  # not allow-listed: the caller decides whether to use it
        if value in seen:
            return value
        with self._lock:
            if value in seen:
                return value
            if len(seen) < self.limit:
                seen.add(value)
                return value
            first = key not in self._warned
            self._warned.add(key)
        if first:
            logger.warning(
                "tokenrate: metric attribute %r reached %d distinct values (TOKENRATE_METRIC_ATTRIBUTE_LIMIT); "
                "further values are recorded as %r on metrics (spans, the ledger and the local view keep them).",
                key,
                self.limit,
                OVERFLOW_VALUE,
            )
        return OVERFLOW_VALUE

    def distinct_values(self) -> dict[str, int]:
        """How many distinct values each allow-listed key has taken so far."""
        with self._lock:
            return {key: len(values) for key, values in self._seen.items()}
