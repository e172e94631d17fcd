"""The simulator's plain data: what a request is answered with (`UsagePlan`, `Step`) and what was served.

Everything here is JSON-round-trippable (``to_dict`` / ``from_dict``) so the admin endpoints under ``/_sim/``
can script a simulator running in another process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from tokenrate.records import BILLED_TYPES, PART_OF

PROTOCOLS: tuple[str, ...] = ("openai", "anthropic", "gemini", "bedrock", "groq", "cerebras", "together")

ENDPOINTS: tuple[str, ...] = (
    "chat.completions",
    "completions",
    "responses",
    "embeddings",
    "messages",
    "count_tokens",
    "generate_content",
    "stream_generate_content",
    "embed_content",
    "converse",
    "converse_stream",
    "invoke_model",
    "invoke_model_with_response_stream",
)


@dataclass(frozen=True)
class UsagePlan:
    """The true token counts of one answer, in tokenrate's normalized terms.

    ``input`` includes ``cache_read``, ``cache_write`` and ``tool_use``; ``output`` includes ``reasoning``
    (the rule of `tokenrate.records.TokenUsage`). Each protocol converts this to its own wire arithmetic; a
    field left ``None`` is left off the wire, so tests can exercise "the provider did not say".
    """

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    tool_use: int | None = None
    web_search_requests: int = 0
    """Server-side web searches (Anthropic ``usage.server_tool_use.web_search_requests``); 0 → omitted."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"UsagePlan.{f.name} must be a non-negative int or None, got {value!r}")
        for total in BILLED_TYPES:
            parts = [part for part, of in PART_OF.items() if of == total]
            known = getattr(self, total)
            if known is not None and sum(getattr(self, part) or 0 for part in parts) > known:
                raise ValueError(f"UsagePlan: {' + '.join(parts)} are parts of {total} and exceed it")

    @property
    def total(self) -> int | None:
        """input + output, or ``None`` when either is unknown."""
        if self.input is None or self.output is None:
            return None
        return self.input + self.output

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsagePlan:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown UsagePlan field(s): {sorted(unknown)}")
        return cls(**dict(data))


TOOL_CALL_ENDPOINTS: frozenset[str] = frozenset(
    {
        "chat.completions",
        "responses",
        "messages",
        "generate_content",
        "stream_generate_content",
        "converse",
        "converse_stream",
    }
)
"""The endpoints that can answer with a function call; a ``tool_call`` step never matches any other."""

STREAM_ERROR_ENDPOINTS: frozenset[str] = frozenset({"converse_stream", "invoke_model_with_response_stream"})
"""The endpoints that can fail mid-stream with an exception frame (a ``stream_error`` step)."""

_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")

STEP_KINDS: tuple[str, ...] = (
    "ok",
    "rate_limited",
    "overloaded",
    "server_error",
    "bad_request",
    "delay",
    "drop_connection",
    "tool_call",
    "stream_error",
    "drop_mid_stream",
    "error_event",
    "stall_mid_stream",
    "raw",
)

MID_STREAM_KINDS: frozenset[str] = frozenset({"drop_mid_stream", "error_event", "stall_mid_stream"})
"""Steps that fail a streamed answer part-way; a request that is not streamed skips them (they stay queued)."""


@dataclass(frozen=True)
class Step:
    """One scripted behaviour, consumed (FIFO) by the next ``times`` requests it matches.

    ``match`` restricts the step to a protocol (``"openai"``, ``"anthropic"``, ``"gemini"``) or an endpoint
    (``"chat.completions"``, ``"messages"``, ...); requests that don't match skip it and leave it queued.
    Scripted steps take precedence over the rate-limit model.
    """

    kind: str
    times: int = 1
    match: str | None = None
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: bool = False
    seconds: float = 0.0
    usage: UsagePlan | None = None
    tool_name: str | None = None
    """``tool_call`` steps: the function the model asks the client to call."""
    tool_arguments: dict[str, Any] | None = field(default=None, hash=False)
    """``tool_call`` steps: its arguments, a JSON object (a private copy; ``{}`` when none were given)."""
    code: str | None = None
    """Bedrock: the error code sent (``x-amzn-ErrorType``, or the stream exception type) instead of the kind's
    default, e.g. ``ModelNotReadyException``; the other protocols ignore it."""
    after_events: int = 0
    """Streams that fail part-way (``stream_error`` and the mid-stream kinds): events sent normally first."""
    raw_body: str | None = None
    """``raw`` steps: the response body, sent byte for byte (UTF-8)."""
    raw_events: tuple[str, ...] | None = None
    """``raw`` steps: server-sent event frames, each written and flushed as one chunk (instead of a body)."""
    raw_headers: dict[str, str] | None = field(default=None, hash=False)
    """``raw`` steps: the response headers (a content type is added when absent)."""

    def __post_init__(self) -> None:
        if self.kind not in STEP_KINDS:
            raise ValueError(f"unknown step kind {self.kind!r}; expected one of {STEP_KINDS}")
        if self.kind == "tool_call":
            if not isinstance(self.tool_name, str) or not self.tool_name:
                raise ValueError("a tool_call step needs a non-empty tool_name")
            object.__setattr__(self, "tool_arguments", _json_object(self.tool_arguments))
            if self.match in ENDPOINTS and self.match not in TOOL_CALL_ENDPOINTS:
                raise ValueError(f"endpoint {self.match!r} cannot answer with a tool call")
        elif self.tool_name is not None or self.tool_arguments is not None:
            raise ValueError("tool_name / tool_arguments belong to tool_call steps only")
        if self.kind == "stream_error":
            if self.match in ENDPOINTS and self.match not in STREAM_ERROR_ENDPOINTS:
                raise ValueError(f"endpoint {self.match!r} cannot fail mid-stream")
            if self.match in PROTOCOLS and self.match != "bedrock":
                raise ValueError("stream_error steps are only simulated for bedrock streams")
        if self.code is not None and (not isinstance(self.code, str) or not _ERROR_CODE.match(self.code)):
            raise ValueError(f"Step.code must be an error name such as 'ThrottlingException', got {self.code!r}")
        if self.kind == "raw":
            object.__setattr__(self, "raw_headers", {str(k): str(v) for k, v in (self.raw_headers or {}).items()})
            if self.raw_events is not None:
                object.__setattr__(self, "raw_events", tuple(str(e) for e in self.raw_events))
            if (self.raw_body is None) == (self.raw_events is None):
                raise ValueError("a raw step needs exactly one of raw_body and raw_events")
        elif self.raw_body is not None or self.raw_events is not None or self.raw_headers is not None:
            raise ValueError("raw_body / raw_events / raw_headers belong to raw steps only")
        if self.times < 1:
            raise ValueError("Step.times must be >= 1")
        if self.match is not None and self.match not in PROTOCOLS and self.match not in ENDPOINTS:
            raise ValueError(f"Step.match {self.match!r} is neither a protocol {PROTOCOLS} nor an endpoint")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("Step.retry_after must be >= 0")
        if self.after_events < 0:
            raise ValueError("Step.after_events must be >= 0")

    # -- constructors (the public way to build steps) --------------------------------------------------------
    @classmethod
    def ok(cls, *, usage: UsagePlan | None = None, times: int = 1, match: str | None = None) -> Step:
        """Answer normally (optionally with this usage instead of the provider's current plan)."""
        return cls("ok", times=times, match=match, usage=usage)

    @classmethod
    def rate_limited(
        cls,
        retry_after: float | None = 1,
        times: int = 1,
        retry_after_ms: bool = False,
        *,
        match: str | None = None,
        code: str | None = None,
    ) -> Step:
        """429 with ``retry-after`` seconds (or ``retry-after-ms`` too) and the provider's error body.

        Bedrock sends no Retry-After: a 429 ``ThrottlingException`` (``code`` e.g. ``ModelNotReadyException``).
        """
        return cls(
            "rate_limited", times=times, match=match, retry_after=retry_after, retry_after_ms=retry_after_ms, code=code
        )

    @classmethod
    def overloaded(
        cls,
        retry_after: float | None = None,
        times: int = 1,
        *,
        retry_after_ms: bool = False,
        match: str | None = None,
        code: str | None = None,
    ) -> Step:
        """529 overloaded (Anthropic ``overloaded_error``; OpenAI generic body; Gemini 503 UNAVAILABLE; Bedrock 503
        ``ServiceUnavailableException``)."""
        return cls(
            "overloaded", times=times, match=match, retry_after=retry_after, retry_after_ms=retry_after_ms, code=code
        )

    @classmethod
    def server_error(
        cls, status: int = 500, times: int = 1, *, match: str | None = None, code: str | None = None
    ) -> Step:
        if not 500 <= status <= 599:
            raise ValueError("server_error status must be 5xx")
        return cls("server_error", times=times, match=match, status=status, code=code)

    @classmethod
    def bad_request(cls, times: int = 1, *, match: str | None = None, code: str | None = None) -> Step:
        """400 with the provider's invalid-request error body (never retried by the SDKs)."""
        return cls("bad_request", times=times, match=match, status=400, code=code)

    @classmethod
    def delay(cls, seconds: float, times: int = 1, *, match: str | None = None) -> Step:
        """Answer normally, but only after ``seconds`` (to provoke client timeouts)."""
        if seconds < 0:
            raise ValueError("delay seconds must be >= 0")
        return cls("delay", times=times, match=match, seconds=float(seconds))

    @classmethod
    def drop_connection(cls, times: int = 1, *, match: str | None = None) -> Step:
        """Read the request, then close the socket without answering (a connection error for the client)."""
        return cls("drop_connection", times=times, match=match)

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        times: int = 1,
        match: str | None = None,
        usage: UsagePlan | None = None,
    ) -> Step:
        """Answer 200 with a call of function ``name`` (``arguments``: a JSON object) instead of text.

        Each protocol's own shape: Gemini a ``functionCall`` part (what google-genai's automatic function
        calling acts on), OpenAI ``tool_calls`` / a Responses ``function_call`` item, Anthropic a ``tool_use``
        block. The usage is the provider's plan (or ``usage``), as for `ok`.
        """
        return cls("tool_call", times=times, match=match, usage=usage, tool_name=name, tool_arguments=arguments)

    @classmethod
    def stream_error(
        cls,
        code: str = "throttlingException",
        *,
        after_events: int = 2,
        times: int = 1,
        match: str | None = None,
    ) -> Step:
        """A Bedrock stream that starts (HTTP 200), sends ``after_events`` events, then an exception frame ``code``
        (a stream union error member: ``throttlingException``, ``serviceUnavailableException``, ...) and ends.

        botocore raises ``EventStreamError`` while the user iterates; nothing retries it. Only Bedrock stream
        requests match it (others leave it queued).
        """
        return cls("stream_error", times=times, match=match, code=code, after_events=after_events)

    @classmethod
    def drop_mid_stream(cls, after_events: int = 1, *, times: int = 1, match: str | None = None) -> Step:
        """Stream ``after_events`` events of a normal answer, then close the connection (a network failure)."""
        return cls("drop_mid_stream", times=times, match=match, after_events=after_events)

    @classmethod
    def error_event(cls, after_events: int = 1, *, times: int = 1, match: str | None = None) -> Step:
        """Stream ``after_events`` events, then the provider's own in-stream error event (overloaded), and end.

        OpenAI ``data: {"error": ...}``, Anthropic ``event: error``, Gemini a ``{"error": ...}`` chunk (503),
        Bedrock a ``serviceUnavailableException`` frame (`stream_error` sends another code).
        """
        return cls("error_event", times=times, match=match, after_events=after_events)

    @classmethod
    def stall_mid_stream(
        cls, seconds: float, after_events: int = 1, *, times: int = 1, match: str | None = None
    ) -> Step:
        """Stream ``after_events`` events, then send nothing for ``seconds`` (a client read timeout) and close."""
        if seconds < 0:
            raise ValueError("stall seconds must be >= 0")
        return cls("stall_mid_stream", times=times, match=match, seconds=float(seconds), after_events=after_events)

    @classmethod
    def raw(
        cls,
        body: str | None = None,
        *,
        events: Iterable[str] | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        match: str | None = None,
    ) -> Step:
        """Answer with exactly this: ``status``, ``headers`` and a ``body`` (or SSE ``events``), unchecked.

        For hostile-input tests: whatever a broken provider, proxy or gateway could send (negative or huge
        counts, ``NaN``, ``"usage": null``, malformed events) reaches the SDK as written. No rate-limit model
        and no usage accounting apply; the request is logged like any other.
        """
        return cls(
            "raw",
            times=times,
            match=match,
            status=status,
            raw_body=body,
            raw_events=tuple(events) if events is not None else None,
            raw_headers=dict(headers or {}),
        )

    def matches(self, protocol: str, endpoint: str, stream: bool | None = None) -> bool:
        """Whether a request to ``endpoint`` (streamed or not, if known) takes this step."""
        if self.kind == "tool_call" and endpoint not in TOOL_CALL_ENDPOINTS:
            return False  # e.g. a count_tokens or embeddings request on the way leaves it queued
        if self.kind == "stream_error" and endpoint not in STREAM_ERROR_ENDPOINTS:
            return False
        if self.kind in MID_STREAM_KINDS and stream is False:
            return False  # only a streamed answer can fail part-way
        return self.match is None or self.match in (protocol, endpoint)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = self.usage.to_dict() if self.usage is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Step field(s): {sorted(unknown)}")
        if data.get("raw_events") is not None:
            data["raw_events"] = tuple(data["raw_events"])
        usage = data.get("usage")
        if usage is not None and not isinstance(usage, UsagePlan):
            data["usage"] = UsagePlan.from_dict(usage)
        return cls(**data)


def _json_object(value: Any) -> dict[str, Any]:
    """A private, JSON-clean copy of a tool call's arguments (they go on the wire as a JSON object)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError("tool_arguments must be a mapping with string keys (a JSON object)")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tool_arguments must be JSON-serializable: {exc}") from None


@dataclass(frozen=True)
class ServedRequest:
    """One provider request the simulator received and how it answered (admin requests are not logged)."""

    protocol: str
    path: str
    endpoint: str
    model: str | None
    stream: bool
    status: int | None
    """HTTP status sent; ``None`` when the connection was dropped without an answer."""
    usage: UsagePlan | None
    """The usage actually served (``None`` for errors and token counting)."""
    headers: Mapping[str, str]
    """Request headers, names lower-cased."""
    body: Any
    """The parsed JSON request body (``None`` if it was empty or not JSON)."""
    response_headers: Mapping[str, str]
    started: float
    """``time.monotonic()`` when the request had been read."""
    finished: float | None
    """``time.monotonic()`` when the answer was fully written; ``None`` while it is still being written."""
    include_usage: bool = False
    """OpenAI streams: whether ``stream_options.include_usage`` was requested."""
    outcome: str = "ok"
    """The behaviour applied: a `Step` kind, or ``"model_rate_limited"`` / ``"model_overloaded"``."""
    complete: bool = True
    """False when the client went away before the whole answer was written (e.g. an early stream break)."""
    query: Mapping[str, str] = field(default_factory=dict)
    """The URL query parameters (e.g. Gemini's ``alt=sse``)."""
    body_size: int = 0
    """Bytes in the request body (the default usage plan derives input tokens from it)."""
    tool_results: int = 0
    """Function / tool results the request carried back to the model (Gemini ``functionResponse`` parts, OpenAI
    ``tool`` messages or Responses ``function_call_output`` items, Anthropic ``tool_result`` blocks), counted over
    the whole conversation sent; > 0 shows e.g. that an automatic-function-calling follow-up happened."""

    @property
    def retry_count(self) -> int | None:
        """The ``x-stainless-retry-count`` the SDK sent (openai/anthropic), if any."""
        value = self.headers.get("x-stainless-retry-count")
        return int(value) if value is not None and value.isdigit() else None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["usage"] = self.usage.to_dict() if self.usage is not None else None
        data["headers"] = dict(self.headers)
        data["response_headers"] = dict(self.response_headers)
        data["query"] = dict(self.query)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServedRequest:
        data = dict(data)
        if data.get("usage") is not None:
            data["usage"] = UsagePlan.from_dict(data["usage"])
        return cls(**data)

    def with_changes(self, **changes: Any) -> ServedRequest:
        return replace(self, **changes)
