"""What the wire protocols share: the call being answered, the answer, generated text, SSE framing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._ratelimit import Window

DEFAULT_WORDS = 12
MAX_WORDS = 256
ARGUMENT_PIECE = 8
"""Characters of a tool call's JSON arguments per streamed delta (the real APIs stream them in small pieces)."""

_VOCAB = (
    "simulated",
    "tokens",
    "flow",
    "through",
    "a",
    "local",
    "provider",
    "that",
    "bills",
    "nothing",
    "and",
    "answers",
    "every",
    "call",
    "with",
    "plain",
    "words",
)


@dataclass(frozen=True)
class ToolCall:
    """A function call the answer carries instead of text (a ``tool_call`` step)."""

    name: str
    arguments: Mapping[str, Any]

    @property
    def arguments_json(self) -> str:
        """The arguments as compact JSON, the string OpenAI sends and Anthropic streams."""
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)

    def argument_pieces(self) -> list[str]:
        """``arguments_json`` cut into the pieces a stream sends (never empty: ``{}`` is one piece)."""
        text = self.arguments_json
        return [text[i : i + ARGUMENT_PIECE] for i in range(0, len(text), ARGUMENT_PIECE)]


@dataclass
class Call:
    """One provider request being answered successfully."""

    protocol: str
    endpoint: str
    model: str
    stream: bool
    body: Any
    body_size: int
    request_id: str
    created: int
    plan: UsagePlan
    words: list[str]
    truncated: bool
    """True when the request's max-tokens cut the generated text short."""
    query: Mapping[str, str] = field(default_factory=dict)
    tool: ToolCall | None = None
    """Set when the answer is a function call (then ``words`` are unused and nothing is truncated)."""

    @property
    def text(self) -> str:
        return "".join(self.words)

    @property
    def answer_tokens(self) -> int:
        """Visible output tokens (output minus reasoning) to spread over the generated words."""
        return max(0, (self.plan.output or 0) - (self.plan.reasoning or 0))


@dataclass
class SSEEvent:
    """One streamed event, already encoded (an SSE event, or a binary event-stream message)."""

    data: bytes
    tokens: float = 0.0
    """Output tokens this event stands for; the server paces events by them (``tokens_per_second``)."""


@dataclass
class Reply:
    """An answer: a JSON document, or a list of server-sent events."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    events: list[SSEEvent] | None = None
    content_type: str | None = None
    """The media type of streamed ``events`` (default: server-sent events)."""


def words_for(plan_output: int | None, plan_reasoning: int | None, max_tokens: int | None) -> tuple[list[str], bool]:
    """Deterministic answer text as word pieces (each with its leading space), and whether max-tokens cut it.

    One word stands for one output token where it can: with a usage plan the text has ``output - reasoning``
    words (capped at `MAX_WORDS`).
    """
    n = DEFAULT_WORDS if plan_output is None else min(MAX_WORDS, max(1, plan_output - (plan_reasoning or 0)))
    truncated = False
    if max_tokens is not None and 0 < max_tokens < n:
        n, truncated = max_tokens, True
    pieces = []
    for i in range(n):
        word = _VOCAB[i % len(_VOCAB)]
        if i == 0:
            word = word.capitalize()
        if i == n - 1 and not truncated:
            word += "."
        pieces.append(word if i == 0 else " " + word)
    return pieces, truncated


def default_plan(body_size: int, n_words: int) -> UsagePlan:
    """The usage served when no plan is set: exact and reproducible, derived from the request."""
    return UsagePlan(input=10 + body_size // 20, output=n_words)


def count_items(items: Any, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
    """How many mappings in the list ``items`` satisfy ``predicate`` (0 for anything that is not a list)."""
    if not isinstance(items, list):
        return 0
    return sum(1 for item in items if isinstance(item, Mapping) and predicate(item))


def spread(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` non-negative integers that sum to it (earlier parts get the remainder)."""
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One server-sent event: optional ``event:`` line, one ``data:`` line, blank line."""
    nl = "\r\n" if crlf else "\n"
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{nl}" if event else ""
    return f"{head}data: {payload}{nl}{nl}".encode()


def drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def minus(total: int | None, *parts: int | None) -> int | None:
    """``total`` minus the known parts; unknown when ``total`` is unknown."""
    if total is None:
        return None
    return total - sum(p or 0 for p in parts)


def retry_after_headers(seconds: float | None, *, with_ms: bool) -> dict[str, str]:
    """``retry-after`` (whole seconds, as HTTP wants: rounded up) and optionally ``retry-after-ms``."""
    if seconds is None:
        return {}
    headers = {"retry-after": _whole_or_decimal(seconds, with_ms=with_ms)}
    if with_ms:
        headers["retry-after-ms"] = str(math.ceil(seconds * 1000.0 - 1e-6))
    return headers


def _whole_or_decimal(seconds: float, *, with_ms: bool) -> str:
    # With retry-after-ms alongside, retry-after is the rounded-up whole-second fallback (as OpenAI sends it);
    # alone, a fractional scripted value is sent as is, which the Stainless SDKs parse as a float.
    if with_ms or float(seconds).is_integer():
        return str(math.ceil(seconds - 1e-9))
    return repr(float(seconds))


def windows_exhausted(windows: Mapping[str, Window], kinds: tuple[str, ...]) -> dict[str, Window]:
    return {k: (Window(w.limit, 0, w.reset_s) if k in kinds else w) for k, w in windows.items()}
