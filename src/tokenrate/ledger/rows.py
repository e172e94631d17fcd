"""A call record as a ledger row, every value checked so that SQLite can store it and sums stay sound.

Provider numbers are validated where they enter (the adapters), but the ledger does not rely on it: one value
SQLite cannot store (an integer >= 2**63) would make the whole batch fail, and one no call can have (NaN,
negative, 1e30 tokens) would poison every sum and report after it. Such a value is stored as NULL (unknown) —
or 0 in a column that counts events — and `RowBuilder.row` says which column and why, for the writer to count
and log once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from tokenrate.ledger.schema import TOKEN_COLUMNS
from tokenrate.records import TOKEN_TYPES, CallRecord

MAX_TOKENS = 10**12
"""Tokens one call can report: far above any model's context, far below what would overflow a sum."""
MAX_COUNT = 10**9
"""Retries or throttle events of one call."""
MAX_SECONDS = 10**7
"""About 116 days: longer durations or waits are not real."""
MAX_COST_USD = 1e9
MAX_TEXT = 256
"""Characters kept of a name (provider, model, error type)."""


class RowBuilder:
    """Turns records into rows for `tokenrate.ledger.schema.INSERT_CALL`, tagged with this process's identity."""

    __slots__ = ("pid", "process", "service", "session")

    def __init__(self, session: str, pid: int, process: str, service: str | None) -> None:
        self.session = session
        self.pid = pid
        self.process = process
        self.service = service

    def row(self, record: CallRecord) -> tuple[tuple[Any, ...], list[str]]:
        """The row, and what had to be replaced in it (empty when every value was sound)."""
        problems: list[str] = []
        info = record.info
        usage = record.usage
        ts = record.started_unix
        if not _finite(ts) or ts < 0:
            problems.append(f"ts={ts!r} is not a time; stored as the time it was written")
            ts = time.time()
        tokens = tuple(
            _checked(getattr(usage, name), column, MAX_TOKENS, problems, whole=True)
            for name, column in zip(TOKEN_TYPES, TOKEN_COLUMNS, strict=True)
        )
        return (
            (
                ts,
                self.session,
                self.pid,
                self.process,
                self.service,
                _text(info.provider) or "unknown",
                _text(info.operation),
                _text(info.request_model),
                _text(record.response_model),
                *tokens,
                _checked(record.cost_usd, "cost_usd", MAX_COST_USD, problems),
                _checked(record.throttle_events, "throttle_events", MAX_COUNT, problems, whole=True) or 0,
                _checked(record.throttle_wait_s, "throttle_wait_s", MAX_SECONDS, problems) or 0.0,
                _checked(len(record.retries), "retries", MAX_COUNT, problems, whole=True) or 0,
                _checked(record.retry_wait_s, "retry_wait_s", MAX_SECONDS, problems) or 0.0,
                _status(record.status_code, problems),
                _text(record.error_type),
                _text(record.outcome),
                _checked(record.duration_s, "duration_s", MAX_SECONDS, problems),
                _checked(record.time_to_first_chunk_s, "ttfc_s", MAX_SECONDS, problems),
                1 if info.stream else 0,
                attributes_json(record.attributes),
            ),
            problems,
        )


def attributes_json(attributes: Mapping[str, str]) -> str | None:
    """The ``attributes`` column: a JSON object with sorted keys, or NULL when the call had none."""
    if not attributes:
        return None
    return json.dumps({str(k): str(v) for k, v in attributes.items()}, sort_keys=True, ensure_ascii=False)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(value: Any, column: str, maximum: float, problems: list[str], *, whole: bool = False) -> Any:
    """``value`` when it is a finite number in [0, maximum] (an integer for ``whole``); else None, noted."""
    if value is None:
        return None
    if _finite(value) and 0 <= value <= maximum:
        if not whole:
            return float(value)
        if isinstance(value, int) or float(value).is_integer():
            return int(value)
    problems.append(f"{column}={_short(value)} is out of range; stored as unknown")
    return None


def _status(value: Any, problems: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999:
        return value
    problems.append(f"status_code={_short(value)} is not an HTTP status; stored as unknown")
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, str) else str(value))[:MAX_TEXT]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
