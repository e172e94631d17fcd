"""Exceptions tokenrate raises on purpose. Everything else inside tokenrate is caught and logged."""

from __future__ import annotations


class TokenrateError(Exception):
    """Base class for the exceptions tokenrate raises deliberately."""


class CallRejected(TokenrateError):
    """A sink refused a call before any HTTP request was sent (e.g. an enforced budget is exhausted).

    This is the only tokenrate exception that can reach user code from an instrumented call, and only when
    the user opted in to enforcement.
    """
