"""Exceptions tokenrate raises on purpose. Everything else inside tokenrate is caught and logged."""

from __future__ import annotations


class TokenrateError(Exception):
    """Base class for the exceptions tokenrate raises deliberately."""


class CallRejected(TokenrateError):
    """A sink refused a call before any HTTP request was sent (e.g. an enforced budget is exhausted).

    This is the only tokenrate exception that can reach user code from an instrumented call, and only when
    the user opted in to enforcement.
    """


class BudgetExceededError(CallRejected):
    """An enforced budget is used up; the call was not sent. ``budget`` names it, ``scope`` says for whom
    (``{"user.id": "u-42"}``; empty for a budget over every call)."""

    def __init__(
        self,
        message: str,
        *,
        budget: str | None = None,
        spent: float | None = None,
        limit: float | None = None,
        scope: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.spent = spent
        self.limit = limit
        self.scope = dict(scope or {})


class PriceFileError(TokenrateError):
    """A custom price file (``TOKENRATE_PRICES``) cannot be read; the message names the line or the field."""
