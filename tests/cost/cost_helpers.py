"""Records for cost tests, built directly from `tokenrate.records` types."""

from __future__ import annotations

import time
from collections.abc import Mapping

from tokenrate.records import CallInfo, CallRecord, TokenUsage


def make_record(
    provider: str,
    model: str | None,
    *,
    response_model: str | None = None,
    server_address: str | None = None,
    started_unix: float | None = None,
    error_type: str | None = None,
    status_code: int | None = None,
    outcome: str | None = None,
    tools: Mapping[str, int] | None = None,
    operation: str = "chat",
    **usage: int | None,
) -> CallRecord:
    return CallRecord(
        info=CallInfo(provider=provider, operation=operation, request_model=model, server_address=server_address),
        started_at=0.0,
        ended_at=1.0,
        started_unix=time.time() if started_unix is None else started_unix,
        usage=TokenUsage(**usage),
        response_model=response_model,
        error_type=error_type,
        status_code=status_code,
        outcome=outcome or ("error" if error_type else "ok"),
        server_tool_requests=dict(tools or {}),
    )
