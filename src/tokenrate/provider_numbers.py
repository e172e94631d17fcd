"""The one gate every number from a provider passes before it reaches a record.

Providers (and proxies, gateways and test servers in front of them) can send anything: negative or fractional
token counts, ``1e308``, ``NaN``, a 311-digit reset duration. Nothing downstream (the view, JSON, the status
line, metrics, the ledger) should have to defend itself, so each adapter reads provider numbers through these
checks, and what fails them becomes *unknown* (``None``), never a guess:

=====================  ===========================================================  ===========================
value                  accepted                                                     otherwise
=====================  ===========================================================  ===========================
token / request count  an integer (or integral float) in ``0 .. MAX_COUNT``,        the whole usage block of
                       and parts within their totals (cache reads in input, ...)   that response is unknown
rate-limit figure      a finite number in ``0 .. MAX_COUNT`` (limit, remaining)     that figure is unknown
seconds                finite, in ``0 .. MAX_SECONDS`` (reset, retry-after)         that figure is unknown
=====================  ===========================================================  ===========================

A usage block is distrusted as a whole because its counts are parts of each other (cache reads are part of
input, Anthropic's input is a sum): keeping the valid half of a broken block would record inconsistent
figures. Every rejection is logged: a WARNING the first time for each place, DEBUG afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from tokenrate._safety import logger, warn_once
from tokenrate.records import TokenUsage

MAX_COUNT = 2**53
"""Largest count accepted (tokens of one call, requests, a rate limit): every count stays exact as a float, in
JSON and in metric sums, and far inside SQLite's integers. No real call comes near it (2**53 ≈ 9e15)."""

MAX_SECONDS = 366 * 24 * 3600.0
"""Longest reset time or retry-after accepted: a year. Real windows reset within a day or a month."""

P = ParamSpec("P")
R = TypeVar("R")


class InvalidProviderValue(ValueError):
    """A provider sent a value that is present but not acceptable (raised inside usage readers only)."""

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(f"{name}={_shown(value)}")
        self.name = name
        self.value = value


def rejected(where: str, detail: str, consequence: str) -> None:
    """Log a rejected provider value: WARNING the first time for ``where`` (a fixed label), DEBUG afterwards."""
    message = "tokenrate: %s: the provider sent %s; %s. Further such values here are logged at DEBUG."
    warn_once(f"provider value: {where}", message, where, detail, consequence)
    logger.debug("tokenrate: %s: rejected %s", where, detail)


def count(value: Any, name: str) -> int | None:
    """A token or request count: ``None`` when absent; raises `InvalidProviderValue` when present but invalid.

    Call it inside a function decorated with `usage_reader`, which turns the exception into unknown usage.
    """
    if value is None:
        return None
    if type(value) is int:  # the common case first; bool is not an int here on purpose
        if 0 <= value <= MAX_COUNT:
            return value
    elif isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_COUNT:
        return int(value)
    raise InvalidProviderValue(name, value)


def usage_reader(where: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorate a usage reader: a block with any invalid count is unknown (``None``) as a whole, and logged."""

    def decorate(reader: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(reader)
        def read(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                usage = reader(*args, **kwargs)
            except InvalidProviderValue as invalid:
                rejected(where, str(invalid), "this response's usage is recorded as unknown")
                return None
            if isinstance(usage, TokenUsage) and not parts_within_totals(usage):
                rejected(
                    where, f"parts larger than their total ({usage})", "this response's usage is recorded as unknown"
                )
                return None
            return usage

        return read

    return decorate


def parts_within_totals(usage: TokenUsage) -> bool:
    """The token rule holds: cache reads, cache writes and tool use fit in input; reasoning fits in output."""
    if (
        usage.input is not None
        and (usage.cache_read or 0) + (usage.cache_write or 0) + (usage.tool_use or 0) > usage.input
    ):
        return False
    return usage.output is None or (usage.reasoning or 0) <= usage.output


def amount(value: float | None, where: str, raw: Any = None) -> float | None:
    """A rate-limit figure (limit, remaining): finite and in ``0 .. MAX_COUNT``, else ``None`` (logged)."""
    if value is not None and 0.0 <= value <= MAX_COUNT:  # NaN fails both comparisons
        return value
    if value is not None or raw is not None:
        rejected(where, _shown(raw if raw is not None else value), "it is recorded as unknown")
    return None


def seconds(value: float | None, where: str, raw: Any = None) -> float | None:
    """A duration (reset, retry-after): finite and in ``0 .. MAX_SECONDS``, else ``None`` (logged)."""
    if value is not None and 0.0 <= value <= MAX_SECONDS:
        return value
    if value is not None or raw is not None:
        rejected(where, _shown(raw if raw is not None else value), "it is recorded as unknown")
    return None


def _shown(value: Any, limit: int = 48) -> str:
    """A short repr for logs: a hostile value can be kilobytes long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text)} chars)"
