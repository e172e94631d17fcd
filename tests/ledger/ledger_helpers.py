"""Records and small utilities for ledger tests (records built directly from `tokenrate.records` types)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tokenrate.records import CallInfo, CallRecord, RetryRecord, TokenUsage

T0 = 1_772_359_200.0
"""2026-03-01 10:00:00 UTC."""
DAY = 86_400.0


def make_record(
    *,
    ts: float = T0,
    provider: str = "openai",
    model: str | None = "gpt-4o",
    response_model: str | None = None,
    operation: str = "chat",
    cost: float | None = 0.001,
    throttled_waits: tuple[float, ...] = (),
    error_type: str | None = None,
    status_code: int | None = 200,
    stream: bool = False,
    duration: float = 0.5,
    **usage: int | None,
) -> CallRecord:
    info = CallInfo(provider=provider, operation=operation, request_model=model, stream=stream)
    retries = tuple(
        RetryRecord(info=info, attempt=i + 1, status_code=429, reason="throttled", wait_s=w, at=0.0)
        for i, w in enumerate(throttled_waits)
    )
    return CallRecord(
        info=info,
        started_at=100.0,
        ended_at=100.0 + duration,
        started_unix=ts,
        usage=TokenUsage(**usage) if usage else TokenUsage(input=100, output=20),
        response_model=response_model,
        retries=retries,
        status_code=status_code,
        error_type=error_type,
        outcome="error" if error_type else "ok",
        cost_usd=cost,
    )


def rows(path: Path | str, sql: str = "SELECT * FROM calls ORDER BY id", params: tuple[Any, ...] = ()) -> list[dict]:
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()
