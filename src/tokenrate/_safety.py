"""Keeping tokenrate's own failures away from the user's call.

Every place where tokenrate code runs inside an SDK call goes through `report` when it fails: the failure is
logged once per place (WARNING, then DEBUG with the traceback) and the SDK call carries on untouched.

Swallowing is for production. The test suite installs a listener (`set_failure_listener`) that fails any test
in which tokenrate swallowed a failure, so a bug cannot hide behind the safety net.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("tokenrate")

_reported: set[str] = set()
_reported_lock = threading.Lock()

FailureListener = Callable[[str, BaseException], None]
_failure_listener: FailureListener | None = None


def set_failure_listener(listener: FailureListener | None) -> FailureListener | None:
    """Also hand every swallowed failure to ``listener`` (the tests do); returns the previous listener."""
    global _failure_listener
    previous, _failure_listener = _failure_listener, listener
    return previous


def report(where: str, exc: BaseException) -> None:
    """Log a failure inside tokenrate: WARNING the first time for ``where``, DEBUG afterwards."""
    try:
        listener = _failure_listener
        if listener is not None:
            listener(where, exc)
        with _reported_lock:
            first = where not in _reported
            _reported.add(where)
        if first:
            logger.warning(
                "tokenrate: %s failed (%s: %s); the SDK call is unaffected and tokenrate carries on. "
                "Further failures here are logged at DEBUG.",
                where,
                type(exc).__name__,
                exc,
            )
        logger.debug("tokenrate: %s failed", where, exc_info=exc)
    except Exception:  # logging itself must never break the call either
        pass


def warn_once(key: str, message: str, *args: object) -> None:
    """A WARNING logged once per ``key`` for the whole process (e.g. one per unknown model)."""
    with _reported_lock:
        if key in _reported:
            return
        _reported.add(key)
    logger.warning(message, *args)
