"""`Snapshot`: an immutable, JSON-serializable picture of the local view at one moment.

Snapshots cross process boundaries (``tokenrate top`` reads what other processes publish), so `from_dict` is
forgiving: a missing field takes its default and an unknown one is ignored, so a slightly older or newer
tokenrate can still be read. ``Snapshot.from_dict(s.to_dict()) == s`` holds exactly (floats survive JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from tokenrate.records import TOKEN_TYPES, BudgetLine

Counts = tuple[tuple[str, int], ...]
"""A small read-only name -> count table (sorted by name), e.g. errors by type."""


def _int(d: Mapping[str, Any], key: str, default: int = 0) -> int:
    v = d.get(key, default)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def _float(d: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    v = d.get(key, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def _opt_int(d: Mapping[str, Any], key: str) -> int | None:
    v = d.get(key)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _opt_float(d: Mapping[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _str(d: Mapping[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    return v if isinstance(v, str) else default


def _counts_to_dict(counts: Counts) -> dict[str, int]:
    return dict(counts)


def _counts_from(value: Any) -> Counts:
    if not isinstance(value, Mapping):
        return ()
    return tuple(sorted((str(k), int(v)) for k, v in value.items() if isinstance(v, (int, float))))


@dataclass(frozen=True)
class TokenTotals:
    """Summed tokens by type. ``None``: no call reported that type, so it is unknown (not 0).

    Only reported values are summed; calls that reported no usage at all are counted in ``unknown_usage_calls``.
    """

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    tool_use: int | None = None

    @property
    def total(self) -> int:
        """All billed tokens that are known: input + output (the other types are parts of these)."""
        return (self.input or 0) + (self.output or 0)

    def to_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in TOKEN_TYPES}

    @classmethod
    def from_dict(cls, d: Any) -> TokenTotals:
        if not isinstance(d, Mapping):
            return cls()
        return cls(**{name: _opt_int(d, name) for name in TOKEN_TYPES})


@dataclass(frozen=True)
class Rates:
    """Rolling and session rates. ``tpm`` counts input + output tokens, what providers' TPM limits count."""

    window_s: int = 60
    tpm: int = 0
    """Input + output tokens of calls that ended in the rolling window."""
    tpm_input: int = 0
    tpm_output: int = 0
    rpm: int = 0
    """Logical calls (one per user call, retries not counted) that ended in the window, failed ones too."""
    apm: int = 0
    """Attempts in the window: every HTTP attempt, retries included (closer to what the provider counts)."""
    active_tpm: float | None = None
    """Window tokens per minute of provider time in the window; ``None`` when no call was in flight."""
    window_busy_s: float = 0.0
    peak_tpm: int = 0
    peak_rpm: int = 0
    avg_tpm: float = 0.0
    """The mean of ``tpm`` over the session, sampled every second (idle time included): ``now``, ``peak`` and
    ``average`` are three statistics of the same rolling figure, so the average is never above the peak. For a
    session much longer than a minute it is its tokens per minute; a shorter one is not extrapolated."""
    avg_rpm: float = 0.0
    """The mean of ``rpm`` over the session, likewise."""
    session_active_tpm: float | None = None
    """Session tokens per minute of provider time (time with at least one call in flight)."""
    busy_s: float = 0.0
    """Session provider time in seconds: the union of all calls' in-flight intervals (429 waits included)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Any) -> Rates:
        if not isinstance(d, Mapping):
            return cls()
        return cls(
            window_s=_int(d, "window_s", 60),
            tpm=_int(d, "tpm"),
            tpm_input=_int(d, "tpm_input"),
            tpm_output=_int(d, "tpm_output"),
            rpm=_int(d, "rpm"),
            apm=_int(d, "apm"),
            active_tpm=_opt_float(d, "active_tpm"),
            window_busy_s=_float(d, "window_busy_s"),
            peak_tpm=_int(d, "peak_tpm"),
            peak_rpm=_int(d, "peak_rpm"),
            avg_tpm=_float(d, "avg_tpm"),
            avg_rpm=_float(d, "avg_rpm"),
            session_active_tpm=_opt_float(d, "session_active_tpm"),
            busy_s=_float(d, "busy_s"),
        )


@dataclass(frozen=True)
class ThrottleTotals:
    """Throttling and retries over the session, including retries of calls still in flight."""

    events: int = 0
    """429/529 answers seen: every throttled retry plus final throttled failures."""
    wait_s: float = 0.0
    """Seconds the SDKs slept before retrying throttled attempts, summed over calls: concurrent calls waiting at
    the same time each count, so this can exceed the session's duration."""
    wall_s: float = 0.0
    """Wall-clock seconds during which at least one call was waiting out a throttled attempt (never more than
    the session's duration)."""
    retries: int = 0
    """Retries for any reason."""
    retry_wait_s: float = 0.0
    retries_by_reason: Counts = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "wait_s": self.wait_s,
            "wall_s": self.wall_s,
            "retries": self.retries,
            "retry_wait_s": self.retry_wait_s,
            "retries_by_reason": _counts_to_dict(self.retries_by_reason),
        }

    @classmethod
    def from_dict(cls, d: Any) -> ThrottleTotals:
        if not isinstance(d, Mapping):
            return cls()
        return cls(
            events=_int(d, "events"),
            wait_s=_float(d, "wait_s"),
            wall_s=_float(d, "wall_s"),
            retries=_int(d, "retries"),
            retry_wait_s=_float(d, "retry_wait_s"),
            retries_by_reason=_counts_from(d.get("retries_by_reason")),
        )


@dataclass(frozen=True)
class RateLimitState:
    """The latest value of one provider rate-limit window (from a response's or a 429's headers)."""

    provider: str
    kind: str
    """``requests``, ``tokens``, ``input_tokens`` or ``output_tokens``."""
    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None
    """Seconds until the window refills, counted from ``observed_at``."""
    used_fraction: float | None = None
    observed_at: float = 0.0
    """Wall-clock time (``time.time()``) the headers were seen."""

    @property
    def resets_at(self) -> float | None:
        return None if self.reset_s is None else self.observed_at + self.reset_s

    def is_current(self, now: float) -> bool:
        """False once the window has refilled (its reset time passed): old headers say nothing about now."""
        resets_at = self.resets_at
        return resets_at is None or resets_at > now

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Any) -> RateLimitState:
        if not isinstance(d, Mapping):
            d = {}
        return cls(
            provider=_str(d, "provider"),
            kind=_str(d, "kind"),
            limit=_opt_float(d, "limit"),
            remaining=_opt_float(d, "remaining"),
            reset_s=_opt_float(d, "reset_s"),
            used_fraction=_opt_float(d, "used_fraction"),
            observed_at=_float(d, "observed_at"),
        )


@dataclass(frozen=True, kw_only=True)
class UsageFigures:
    """The figures the session totals have, for one slice of the calls (a model, a user, a feature...)."""

    requests: int = 0
    attempts: int = 0
    errors: int = 0
    tokens: TokenTotals = TokenTotals()
    unknown_usage_calls: int = 0
    tpm: int = 0
    tpm_input: int = 0
    tpm_output: int = 0
    rpm: int = 0
    apm: int = 0
    peak_tpm: int = 0
    peak_rpm: int = 0
    throttle_events: int = 0
    throttle_wait_s: float = 0.0
    """Summed over the slice's calls (see `ThrottleTotals.wait_s`)."""
    throttle_wall_s: float = 0.0
    """Wall-clock seconds with at least one of the slice's calls waiting out a throttled attempt."""
    retries: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tokens"] = self.tokens.to_dict()
        return out

    @staticmethod
    def _figures_from(d: Mapping[str, Any]) -> dict[str, Any]:
        """The `UsageFigures` fields of a dict, for a subclass's ``from_dict``."""
        return {
            "requests": _int(d, "requests"),
            "attempts": _int(d, "attempts"),
            "errors": _int(d, "errors"),
            "tokens": TokenTotals.from_dict(d.get("tokens")),
            "unknown_usage_calls": _int(d, "unknown_usage_calls"),
            "tpm": _int(d, "tpm"),
            "tpm_input": _int(d, "tpm_input"),
            "tpm_output": _int(d, "tpm_output"),
            "rpm": _int(d, "rpm"),
            "apm": _int(d, "apm"),
            "peak_tpm": _int(d, "peak_tpm"),
            "peak_rpm": _int(d, "peak_rpm"),
            "throttle_events": _int(d, "throttle_events"),
            "throttle_wait_s": _float(d, "throttle_wait_s"),
            "throttle_wall_s": _float(d, "throttle_wall_s"),
            "retries": _int(d, "retries"),
            "cost_usd": _float(d, "cost_usd"),
            "unknown_cost_calls": _int(d, "unknown_cost_calls"),
        }


@dataclass(frozen=True)
class ModelRow(UsageFigures):
    """The same figures as the session totals, for one (provider, model)."""

    provider: str
    model: str

    @classmethod
    def from_dict(cls, d: Any) -> ModelRow:
        if not isinstance(d, Mapping):
            d = {}
        return cls(provider=_str(d, "provider"), model=_str(d, "model"), **cls._figures_from(d))


@dataclass(frozen=True)
class GroupRow(UsageFigures):
    """The same figures as the session totals, for the calls whose attribute ``key`` was ``value``."""

    key: str
    """The attribute key, e.g. ``user.id``."""
    value: str
    """Its value, e.g. ``u-42``; `OVERFLOW_VALUE` sums the values beyond the view's cap for this key."""

    @classmethod
    def from_dict(cls, d: Any) -> GroupRow:
        if not isinstance(d, Mapping):
            d = {}
        return cls(key=_str(d, "key"), value=_str(d, "value"), **cls._figures_from(d))


OVERFLOW_VALUE = "_other"
"""The group that sums an attribute's values beyond the view's cap (the same name metrics use)."""


@dataclass(frozen=True)
class LedgerStatus:
    """How the usage ledger is doing: rows written, and what could not be stored as it was."""

    path: str = ""
    written: int = 0
    dropped: int = 0
    """Calls not in the ledger (queue full, file unusable, a record that could not be stored)."""
    invalid_values: int = 0
    """Values stored as unknown because they were out of range (their calls are in the ledger)."""
    last_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Any) -> LedgerStatus | None:
        if not isinstance(d, Mapping):
            return None
        problem = d.get("last_problem")
        return cls(
            path=_str(d, "path"),
            written=_int(d, "written"),
            dropped=_int(d, "dropped"),
            invalid_values=_int(d, "invalid_values"),
            last_problem=problem if isinstance(problem, str) else None,
        )


def _budget_to_dict(line: BudgetLine) -> dict[str, Any]:
    return {
        "name": line.name,
        "period": line.period,
        "unit": line.unit,
        "spent": line.spent,
        "limit": line.limit,
        "state": line.state,
        "scope": line.scope,
    }


def _budget_from_dict(d: Any) -> BudgetLine:
    if not isinstance(d, Mapping):
        d = {}
    return BudgetLine(
        name=_str(d, "name"),
        period=_str(d, "period"),
        unit=_str(d, "unit"),
        spent=_float(d, "spent"),
        limit=_float(d, "limit"),
        state=_str(d, "state", "ok"),
        scope=_str(d, "scope"),
    )


SNAPSHOT_FORMAT = 1
"""Bumped only for incompatible changes of the dict layout."""


@dataclass(frozen=True)
class Snapshot:
    """Everything the status line, the summary and ``tokenrate top`` show, at ``updated_at``."""

    updated_at: float = 0.0
    """Wall-clock time of the snapshot."""
    session_started_at: float = 0.0
    """Wall-clock time the view started (or was last reset)."""
    duration_s: float = 0.0
    requests: int = 0
    """Logical calls that ended (each user call once, however many retries); rejected calls excluded."""
    attempts: int = 0
    """HTTP attempts: requests plus retries."""
    errors: int = 0
    errors_by_type: Counts = ()
    rejected: int = 0
    """Calls refused before sending (e.g. an enforced budget); not in ``requests``."""
    cancelled: int = 0
    """Requests the user cancelled (Ctrl-C, task cancellation): counted in ``requests``, never in ``errors``."""
    in_flight: int = 0
    tokens: TokenTotals = TokenTotals()
    reported_token_types: tuple[str, ...] = ()
    """Token types at least one call reported; the others are unknown (shown as such, not as 0)."""
    unknown_usage_calls: int = 0
    """Calls that did not fail yet reported no input/output tokens (their tokens are missing from totals)."""
    rates: Rates = Rates()
    throttle: ThrottleTotals = ThrottleTotals()
    cost_usd: float = 0.0
    """Sum of the calls whose cost is known."""
    unknown_cost_calls: int = 0
    """Calls that did not fail (or reported usage) but have no price: ``cost_usd`` is a lower bound."""
    rate_limits: tuple[RateLimitState, ...] = ()
    models: tuple[ModelRow, ...] = ()
    budgets: tuple[BudgetLine, ...] = ()
    groups: tuple[GroupRow, ...] = ()
    """Totals by call attribute value, every key the view saw (bounded); read them with `by`."""
    ledger: LedgerStatus | None = None
    """The usage ledger's state when one is on."""

    def by(self, key: str) -> tuple[GroupRow, ...]:
        """Totals for each value of the attribute ``key`` (``snapshot().by("user.id")``), costliest first.

        Calls without that attribute are in no row; values beyond the view's cap are summed into the
        `OVERFLOW_VALUE` row, which comes last.
        """
        rows = [g for g in self.groups if g.key == key]
        rows.sort(key=lambda g: (g.value == OVERFLOW_VALUE, -g.cost_usd, -g.tokens.total, -g.requests, g.value))
        return tuple(rows)

    @property
    def group_keys(self) -> tuple[str, ...]:
        """The attribute keys `by` has rows for."""
        return tuple(sorted({g.key for g in self.groups}))

    @property
    def limit_used_max(self) -> float | None:
        """Highest used fraction among rate-limit windows that have not refilled yet (``None``: unknown)."""
        used = [
            w.used_fraction for w in self.rate_limits if w.used_fraction is not None and w.is_current(self.updated_at)
        ]
        return max(used) if used else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "updated_at": self.updated_at,
            "session_started_at": self.session_started_at,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "attempts": self.attempts,
            "errors": self.errors,
            "errors_by_type": _counts_to_dict(self.errors_by_type),
            "rejected": self.rejected,
            "cancelled": self.cancelled,
            "in_flight": self.in_flight,
            "tokens": self.tokens.to_dict(),
            "reported_token_types": list(self.reported_token_types),
            "unknown_usage_calls": self.unknown_usage_calls,
            "rates": self.rates.to_dict(),
            "throttle": self.throttle.to_dict(),
            "cost_usd": self.cost_usd,
            "unknown_cost_calls": self.unknown_cost_calls,
            "rate_limits": [w.to_dict() for w in self.rate_limits],
            "models": [m.to_dict() for m in self.models],
            "budgets": [_budget_to_dict(b) for b in self.budgets],
            "groups": [g.to_dict() for g in self.groups],
            "ledger": None if self.ledger is None else self.ledger.to_dict(),
        }

    def to_json(self, **kwargs: Any) -> str:
        """JSON text (non-finite floats are rejected rather than written as invalid JSON)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Snapshot:
        def items(key: str) -> list[Any]:
            v = d.get(key)
            return v if isinstance(v, list) else []

        return cls(
            updated_at=_float(d, "updated_at"),
            session_started_at=_float(d, "session_started_at"),
            duration_s=_float(d, "duration_s"),
            requests=_int(d, "requests"),
            attempts=_int(d, "attempts"),
            errors=_int(d, "errors"),
            errors_by_type=_counts_from(d.get("errors_by_type")),
            rejected=_int(d, "rejected"),
            cancelled=_int(d, "cancelled"),
            in_flight=_int(d, "in_flight"),
            tokens=TokenTotals.from_dict(d.get("tokens")),
            reported_token_types=tuple(t for t in items("reported_token_types") if t in TOKEN_TYPES),
            unknown_usage_calls=_int(d, "unknown_usage_calls"),
            rates=Rates.from_dict(d.get("rates")),
            throttle=ThrottleTotals.from_dict(d.get("throttle")),
            cost_usd=_float(d, "cost_usd"),
            unknown_cost_calls=_int(d, "unknown_cost_calls"),
            rate_limits=tuple(RateLimitState.from_dict(w) for w in items("rate_limits")),
            models=tuple(ModelRow.from_dict(m) for m in items("models")),
            budgets=tuple(_budget_from_dict(b) for b in items("budgets")),
            groups=tuple(GroupRow.from_dict(g) for g in items("groups")),
            ledger=LedgerStatus.from_dict(d.get("ledger")),
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        return cls.from_dict(json.loads(text))
