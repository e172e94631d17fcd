"""Which calls a budget counts: a scope matches call attributes, the provider and the model.

``{"tokenrate.feature": "search"}`` is one budget for the search feature; ``{"user.id": "*"}`` is one budget
*per distinct user* (each value its own counter); ``{"provider": "openai", "user.id": "*"}`` combines both. A
call that lacks a scoped key is not counted by that budget. A value may also be a list: any of these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

EACH = "*"
PROVIDER = "gen_ai.provider.name"
MODEL = "gen_ai.request.model"
ALIASES = {"provider": PROVIDER, "model": MODEL}
"""Short names accepted in a scope for the call's provider and requested model."""

ScopeValues = tuple[str, ...]
"""The values of a call for a scope's ``*`` keys, in their order: which counter of the budget it goes to."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget's scope; the empty scope (`GLOBAL`) matches every call."""

    fixed: tuple[tuple[str, frozenset[str]], ...] = ()
    """Keys that must have one of these values."""
    each: tuple[str, ...] = ()
    """Keys (``*``) whose every distinct value gets its own counter."""

    @classmethod
    def parse(cls, raw: object) -> Scope:
        """From a budgets-file table; `ValueError` with the reason when it is not a scope."""
        if raw is None:
            return GLOBAL
        if not isinstance(raw, Mapping):
            raise ValueError(f'scope must be a table such as {{ "user.id" = "*" }}, not {raw!r}')
        fixed: list[tuple[str, frozenset[str]]] = []
        each: list[str] = []
        for key, value in raw.items():
            name = ALIASES.get(str(key).strip(), str(key).strip())
            if not name:
                raise ValueError("scope keys must not be empty")
            if value == EACH:
                each.append(name)
            elif isinstance(value, str) and value:
                fixed.append((name, frozenset({value})))
            elif isinstance(value, list) and value and all(isinstance(v, str) and v and v != EACH for v in value):
                fixed.append((name, frozenset(value)))
            else:
                raise ValueError(f'scope value for {key!r} must be "*", a non-empty string or a list of them')
        return cls(tuple(fixed), tuple(each))

    @property
    def is_global(self) -> bool:
        return not self.fixed and not self.each

    @property
    def keys(self) -> tuple[str, ...]:
        return (*(k for k, _ in self.fixed), *self.each)

    def values_for(self, attributes: Mapping[str, str], provider: str, model: str | None) -> ScopeValues | None:
        """The call's values for the ``*`` keys when the call is in scope, else None."""
        if self.is_global:
            return ()
        for key, allowed in self.fixed:
            if _value(key, attributes, provider, model) not in allowed:
                return None
        values = []
        for key in self.each:
            value = _value(key, attributes, provider, model)
            if value is None:
                return None
            values.append(value)
        return tuple(values)

    def describe(self, values: ScopeValues) -> str:
        """``user.id=alice``, ``tokenrate.feature=search``; ``""`` for the global scope."""
        parts = [f"{key}={'|'.join(sorted(allowed))}" for key, allowed in self.fixed]
        parts.extend(f"{key}={value}" for key, value in zip(self.each, values, strict=False))
        return ", ".join(parts)

    def attributes(self, values: ScopeValues) -> dict[str, str]:
        """The scope as attributes (a fixed key with several values is left out: it is not one value)."""
        out = {key: next(iter(allowed)) for key, allowed in self.fixed if len(allowed) == 1}
        out.update(zip(self.each, values, strict=False))
        return out


GLOBAL = Scope()


def _value(key: str, attributes: Mapping[str, str], provider: str, model: str | None) -> str | None:
    if key == PROVIDER:
        return provider
    if key == MODEL:
        return model
    return attributes.get(key)
