"""Applying and removing wrapt hooks, each one independently.

A hook point that is missing on the installed SDK (a private method moved) is skipped with one warning: the
user keeps whatever the other hooks still give (e.g. calls and tokens without throttle data), and the
contract tests in ``tests/contract`` fail loudly for us.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from tokenrate._safety import logger


@dataclass(frozen=True)
class Hook:
    """One wrapt hook: ``module`` + ``qualname`` (``Class.method``), the wrapper, and what it is for."""

    module: str
    qualname: str
    wrapper: Callable[..., Any]
    purpose: str
    expected_parameters: tuple[str, ...] = ()
    """Parameter names the wrapper relies on; the contract tests (and `check`) verify them."""

    @property
    def target(self) -> str:
        return f"{self.module}.{self.qualname}"

    def resolve(self) -> tuple[Any, str]:
        """The object that owns the attribute and the attribute name."""
        owner: Any = importlib.import_module(self.module)
        *path, attribute = self.qualname.split(".")
        for part in path:
            owner = getattr(owner, part)
        return owner, attribute

    def check(self) -> str | None:
        """``None`` if the hook point exists with the expected parameters, else what is wrong."""
        try:
            owner, attribute = self.resolve()
            function = inspect.getattr_static(owner, attribute)
        except (ImportError, AttributeError) as exc:
            return f"missing ({exc})"
        function = getattr(function, "__wrapped__", function)
        if not callable(function):
            return "not callable"
        if self.expected_parameters:
            try:
                parameters = inspect.signature(function).parameters
            except (TypeError, ValueError):
                return "signature unreadable"
            absent = [name for name in self.expected_parameters if name not in parameters]
            if absent:
                return f"parameters changed: {', '.join(absent)} not found"
        return None


class Patcher:
    """Applies a list of hooks and can take every applied one off again."""

    def __init__(self, hooks: list[Hook]) -> None:
        self.hooks = hooks
        self.applied: list[Hook] = []
        self.skipped: dict[str, str] = {}

    def apply(self) -> None:
        for hook in self.hooks:
            problem = hook.check()
            if problem is not None:
                self.skipped[hook.target] = problem
                logger.warning(
                    "tokenrate: cannot hook %s (%s): %s will be missing. Is this SDK version supported? "
                    "Run `tokenrate diagnostics`.",
                    hook.target,
                    problem,
                    hook.purpose,
                )
                continue
            try:
                owner, attribute = hook.resolve()
                wrapt.wrap_function_wrapper(owner, attribute, hook.wrapper)
            except Exception as exc:
                self.skipped[hook.target] = repr(exc)
                logger.warning("tokenrate: hooking %s failed (%s): %s will be missing", hook.target, exc, hook.purpose)
                continue
            self.applied.append(hook)

    def revert(self) -> None:
        for hook in reversed(self.applied):
            try:
                owner, attribute = hook.resolve()
                unwrap(owner, attribute)
            except Exception as exc:
                logger.warning("tokenrate: could not remove hook %s: %s", hook.target, exc)
        self.applied.clear()
        self.skipped.clear()
