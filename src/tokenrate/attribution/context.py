"""Attributes that follow the code: `attributes` (a context manager and a decorator) and `current_attributes`.

`current_attributes` is what a call carries when it starts: the innermost block's attributes, plus the OTel
Baggage entries named in ``TOKENRATE_BAGGAGE_KEYS`` (attribution that crossed a service boundary in the W3C
``baggage`` header); a block's own value wins over baggage.

The attributes in force live in one `ContextVar`, so they follow ``asyncio`` tasks and threads started with
``contextvars.copy_context().run``, exactly like OTel's own context. Each block pushes a frame holding the
merged attributes (outer ones, then its own: inner wins), so reading them when a call starts is one
``ContextVar.get`` and no merging; with nothing set it is that ``get`` and a ``None`` check.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar

from opentelemetry import baggage

from tokenrate._safety import warn_once
from tokenrate.records import NO_ATTRIBUTES

USER_ID = "user.id"
"""Semconv: the user's identifier. Personal data (PII): prefer a pseudonymous id (see the README)."""
CONVERSATION_ID = "gen_ai.conversation.id"
AGENT_NAME = "gen_ai.agent.name"
FEATURE = "tokenrate.feature"

SHORTCUTS: Mapping[str, str] = MappingProxyType(
    {"user_id": USER_ID, "conversation_id": CONVERSATION_ID, "agent": AGENT_NAME, "feature": FEATURE}
)
"""Keyword arguments of `attributes` and the attribute key each one sets."""

MAX_KEY_LEN = 128
MAX_VALUE_LEN = 256
"""Longer values are cut: attributes identify who or what, they never carry content."""
MAX_ATTRIBUTES = 32
"""Attributes per call; further keys are ignored (with one WARNING)."""

Attributes = Mapping[str, str]
EMPTY: Attributes = NO_ATTRIBUTES

F = TypeVar("F", bound=Callable[..., Any])


class _Frame:
    """One active block: the merged attributes in force inside it, and the block that was in force before."""

    __slots__ = ("attributes", "owner", "parent")

    def __init__(self, attributes: Attributes, parent: _Frame | None, owner: AttributeScope) -> None:
        self.attributes = attributes
        self.parent = parent
        self.owner = owner


_current: ContextVar[_Frame | None] = ContextVar("tokenrate_attributes", default=None)


class AttributeScope:
    """What `attributes` returns: use it as ``with``/``async with`` block or as a decorator.

    One scope object may be entered many times, also concurrently from several threads or tasks: it keeps no
    per-entry state of its own (each entry's frame lives in the context).
    """

    __slots__ = ("_values",)

    def __init__(self, values: tuple[tuple[str, str | None], ...]) -> None:
        self._values = values
        """(key, value) pairs in the order given; a ``None`` value removes an outer block's key."""

    @property
    def values(self) -> Attributes:
        """The attributes this block sets (without the outer blocks' ones)."""
        return MappingProxyType({key: value for key, value in self._values if value is not None})

    def __repr__(self) -> str:
        return f"tokenrate.attributes({dict(self._values)!r})"

    # -- as a block ---------------------------------------------------------------------------------------------

    def __enter__(self) -> AttributeScope:
        parent = _current.get()
        merged = dict(parent.attributes) if parent is not None else {}
        for key, value in self._values:
            if value is None:
                merged.pop(key, None)
            elif key in merged or len(merged) < MAX_ATTRIBUTES:
                merged[key] = value
            else:
                warn_once(
                    "attributes:too-many",
                    "tokenrate: more than %d attributes on a call; %r and further keys are ignored.",
                    MAX_ATTRIBUTES,
                    key,
                )
        _current.set(_Frame(MappingProxyType(merged), parent, self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        frame = _current.get()
        while frame is not None and frame.owner is not self:  # an inner block left open: leave it too
            frame = frame.parent
        if frame is not None:
            _current.set(frame.parent)

    async def __aenter__(self) -> AttributeScope:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    # -- as a decorator -----------------------------------------------------------------------------------------

    def __call__(self, function: F) -> F:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError(
                "tokenrate.attributes cannot decorate a generator function (its body runs after the call "
                "returns); use `with tokenrate.attributes(...)` inside it instead"
            )
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]


def attributes(
    mapping: Mapping[str, object] | None = None,
    /,
    *,
    user_id: object = None,
    conversation_id: object = None,
    agent: object = None,
    feature: object = None,
) -> AttributeScope:
    """Attach attributes to every LLM call made inside a block or a decorated function.

    ``user_id`` sets ``user.id``, ``conversation_id`` ``gen_ai.conversation.id``, ``agent``
    ``gen_ai.agent.name`` and ``feature`` ``tokenrate.feature``; any other key goes in ``mapping``
    (``tokenrate.attributes({"tenant.id": "acme"})``). Values become strings, cut at `MAX_VALUE_LEN`
    characters; a ``None`` value in ``mapping`` removes that key inside the block. Blocks nest: inner values win.

    Where they go: every call's span, the ledger, the local view's grouping (``snapshot().by(key)``), budgets
    scoped on them, and metrics only for keys listed in ``TOKENRATE_METRIC_ATTRIBUTES``.
    """
    pairs: list[tuple[str, str | None]] = []
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"tokenrate.attributes takes a mapping of key -> value, not {type(mapping).__name__}")
        for key, value in mapping.items():
            pairs.append((_key(key), None if value is None else clean_value(value)))
    shortcuts = {"user_id": user_id, "conversation_id": conversation_id, "agent": agent, "feature": feature}
    for name, value in shortcuts.items():
        if value is not None:
            pairs.append((SHORTCUTS[name], clean_value(value)))
    return AttributeScope(tuple(pairs))


def _key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise TypeError(f"attribute keys are non-empty strings, not {key!r}")
    return key.strip()[:MAX_KEY_LEN]


def clean_value(value: object) -> str:
    """An attribute value as tokenrate stores it: a string of at most `MAX_VALUE_LEN` characters."""
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_VALUE_LEN]


def block_attributes() -> Attributes:
    """The attributes of the innermost `attributes` block in force here (`EMPTY` outside any)."""
    frame = _current.get()
    return EMPTY if frame is None else frame.attributes


# -- what a call carries ------------------------------------------------------------------------------------------

_baggage_keys: tuple[str, ...] = ()


def set_baggage_keys(keys: tuple[str, ...]) -> None:
    """Copy these OTel Baggage entries onto calls (``TOKENRATE_BAGGAGE_KEYS``); ``()`` turns it off."""
    global _baggage_keys
    _baggage_keys = tuple(dict.fromkeys(_key(key) for key in keys))


def baggage_keys() -> tuple[str, ...]:
    return _baggage_keys


def current_attributes() -> Attributes:
    """The attributes a call starting here carries (read once per call, when it starts)."""
    frame = _current.get()
    attributes = EMPTY if frame is None else frame.attributes
    if _baggage_keys:
        return _with_baggage(attributes, _baggage_keys)
    return attributes


def _with_baggage(attributes: Attributes, keys: tuple[str, ...]) -> Attributes:
    entries = baggage.get_all()
    if not entries:
        return attributes
    merged = None
    for key in keys:
        value = entries.get(key)
        if value is None or key in attributes:
            continue
        if merged is None:
            merged = dict(attributes)
        if len(merged) < MAX_ATTRIBUTES:
            merged[key] = clean_value(value)
    return attributes if merged is None else MappingProxyType(merged)
