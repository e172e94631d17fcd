"""`SimulatedProvider`: a local HTTP server that answers like OpenAI, Anthropic, the Gemini API, Bedrock, Groq,
Cerebras and Together.

Stdlib only: ``http.server.ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive), streaming
answers as chunked server-sent events (Bedrock: binary event-stream messages) written and flushed one at a time.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tokenrate.simulator import _anthropic, _bedrock, _cerebras, _gemini, _groq, _openai, _together
from tokenrate.simulator._model import MID_STREAM_KINDS, ServedRequest, Step, UsagePlan
from tokenrate.simulator._ratelimit import GENEROUS, RateLimiter, RateLimitModel, Window
from tokenrate.simulator._wire import Call, Reply, SSEEvent, ToolCall, default_plan, retry_after_headers, words_for

logger = logging.getLogger("tokenrate.simulator")

SIMULATED_HEADER = "x-tokenrate-simulated"
PROTOCOL_MODULES: dict[str, ModuleType] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "bedrock": _bedrock,
    "groq": _groq,
    "cerebras": _cerebras,
    "together": _together,
}
NO_USAGE_ENDPOINTS = frozenset({"count_tokens"})
INPUT_ONLY_ENDPOINTS = frozenset({"embeddings", "embed_content", "count_tokens"})
OVERLOADED_STATUS = {
    "openai": 529,
    "anthropic": 529,
    "gemini": 503,
    "bedrock": 503,
    "groq": 503,
    "cerebras": 503,
    "together": 503,
}
"""Only OpenAI and Anthropic answer 529: an overloaded model elsewhere is a 503 (UNAVAILABLE,
ServiceUnavailableException, Together's "at or below your dynamic rate")."""
MAX_BODY = 64 * 1024 * 1024


class _DroppedConnection(Exception):
    """The connection must be closed without an answer."""


@dataclass
class _Route:
    protocol: str
    endpoint: str
    path_model: str | None


def _service_answer(method: str, path: str) -> Any | None:
    """The JSON answer to a request that is not a call (Cerebras' connection warm-up), else ``None``."""
    for module in PROTOCOL_MODULES.values():
        answer_for = getattr(module, "service_answer", None)
        answer = answer_for(method, path) if answer_for is not None else None
        if answer is not None:
            return answer
    return None


def _find_route(method: str, path: str) -> _Route | None:
    for protocol, module in PROTOCOL_MODULES.items():
        found = module.route(method, path)
        if found is not None:
            return _Route(protocol, found[0], found[1])
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sim: SimulatedProvider) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.handler_threads: set[threading.Thread] = set()
        self.tracking_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True, name="tokenrate-sim-conn"
        )
        with self.tracking_lock:
            self.connections.add(request)
            self.handler_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a broken client must not take the server down
            logger.debug("simulator connection error", exc_info=True)
        finally:
            self.shutdown_request(request)
            with self.tracking_lock:
                self.connections.discard(request)
                self.handler_threads.discard(threading.current_thread())

    def close_connections(self) -> list[threading.Thread]:
        with self.tracking_lock:
            connections, threads = list(self.connections), list(self.handler_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return threads


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tokenrate-simulator"
    sys_version = ""
    timeout = 300  # idle keep-alive connections end eventually (stop() closes them at once)
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def _dispatch(self) -> None:
        self.server.sim._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class SimulatedProvider:
    """A simulated LLM provider on 127.0.0.1, speaking the real OpenAI, Anthropic, Gemini and Bedrock wire protocols.

    Use as a context manager (or `start` / `stop`). Not a real provider: every answer carries
    ``x-tokenrate-simulated: true`` and no model is ever called.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: RateLimitModel | None = None,
        clock: Callable[[], float] = time.monotonic,
        usage: UsagePlan | None = None,
        max_served: int = 10_000,
    ) -> None:
        self._host, self._port = host, port
        self._clock = clock
        self._lock = threading.Lock()
        self._usage = usage
        self._steps: list[list[Any]] = []  # [Step, remaining times]
        self._served: deque[dict[str, Any]] = deque(maxlen=max_served)
        self._seq = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.rate_limits = rate_limits

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> SimulatedProvider:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="tokenrate-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end open connections and in-flight answers, and join the threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        threads = server.close_connections()
        server.server_close()
        deadline = time.monotonic() + timeout
        for t in [*threads, thread]:
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        self._server = self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop` is called from another thread (or a signal handler)."""
        self.start()
        assert self._thread is not None
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.2)

    def __enter__(self) -> SimulatedProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- addresses ----------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulated provider is not running")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def base_url_for(self, sdk: str) -> str:
        """The base URL to give a client of ``sdk`` (a name in `tokenrate.sdks`: ``openai``, ``anthropic``, ...)."""
        from tokenrate.sdks import sdk_named

        return self.base_url + sdk_named(sdk).simulator_path

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)`` / ``OPENAI_BASE_URL``."""
        return self.base_url_for("openai")

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)`` / ``ANTHROPIC_BASE_URL``."""
        return self.base_url_for("anthropic")

    @property
    def bedrock_endpoint_url(self) -> str:
        """For ``boto3.client("bedrock-runtime", endpoint_url=...)`` / ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``."""
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        """For ``genai.Client(http_options=types.HttpOptions(base_url=...))``."""
        return self.base_url_for("google-genai")

    # -- behaviour ----------------------------------------------------------------------------------------------

    @property
    def rate_limits(self) -> RateLimitModel | None:
        return self._rate_limits

    @rate_limits.setter
    def rate_limits(self, model: RateLimitModel | None) -> None:
        """Replace the rate-limit model (buckets start full); ``None`` reports generous limits, never enforced."""
        with self._lock:
            self._rate_limits = model
            self._limiter = RateLimiter(model or GENEROUS, self._clock, enforce=model is not None)

    @property
    def usage(self) -> UsagePlan | None:
        """The usage every successful answer reports; ``None`` derives exact counts from each request."""
        with self._lock:
            return self._usage

    @usage.setter
    def usage(self, plan: UsagePlan | None) -> None:
        if plan is not None and not isinstance(plan, UsagePlan):
            raise TypeError("usage must be a UsagePlan or None")
        with self._lock:
            self._usage = plan

    def script(self, *steps: Step | Iterable[Step]) -> None:
        """Queue steps (FIFO) for the next requests; scripted steps take precedence over the rate-limit model."""
        flat: list[Step] = []
        for step in steps:
            if isinstance(step, Step):
                flat.append(step)
            else:
                flat.extend(step)
        for step in flat:
            if not isinstance(step, Step):
                raise TypeError(f"not a Step: {step!r}")
        with self._lock:
            self._steps.extend([step, step.times] for step in flat)

    @property
    def pending_steps(self) -> list[Step]:
        """Steps not yet consumed, each with its remaining ``times``."""
        with self._lock:
            return [replace(step, times=left) for step, left in self._steps]

    @property
    def served(self) -> list[ServedRequest]:
        """Every provider request answered so far, in arrival order (a copy)."""
        with self._lock:
            entries = sorted(self._served, key=lambda e: (e["started"], e["seq"]))
            return [_snapshot(e) for e in entries]

    def wait_for_served(self, count: int, timeout: float = 5.0, *, finished: bool = True) -> list[ServedRequest]:
        """Poll until at least ``count`` requests are logged (and, by default, fully written)."""
        deadline = time.monotonic() + timeout
        while True:
            served = self.served
            done = [s for s in served if s.finished is not None] if finished else served
            if len(done) >= count or time.monotonic() >= deadline:
                return served
            time.sleep(0.005)

    def reset(self) -> None:
        """Clear the script and the served log (the usage plan and rate-limit model stay)."""
        with self._lock:
            self._steps.clear()
            self._served.clear()

    # -- request handling ---------------------------------------------------------------------------------------

    def _take_step(self, protocol: str, endpoint: str, stream: bool) -> Step | None:
        with self._lock:
            for i, entry in enumerate(self._steps):
                step, left = entry
                if step.matches(protocol, endpoint, stream):
                    if left <= 1:
                        del self._steps[i]
                    else:
                        entry[1] = left - 1
                    return step
        return None

    def _handle(self, handler: _Handler) -> None:
        method = handler.command
        parts = urlsplit(handler.path)
        path, query = parts.path, dict(parse_qsl(parts.query))
        try:
            raw = _read_body(handler)
        except (ValueError, OSError):
            handler.close_connection = True
            return
        started = time.monotonic()
        if path.startswith("/_sim/"):
            self._admin(handler, method, path, raw)
            return
        service = _service_answer(method, path)
        if service is not None:  # not a call: not logged in `served`
            _write_json(handler, 200, service, {SIMULATED_HEADER: "true"})
            return
        found = _find_route(method, path)
        if found is None:
            logger.warning("simulated provider: unknown path %s %s", method, path)
            module = _bedrock if path.startswith("/model/") else _gemini if "models/" in path else _openai
            headers = {SIMULATED_HEADER: "true"}
            if module is _bedrock:
                headers.update(_bedrock.error_headers("not_found", 404, None))
            _write_json(handler, 404, module.error("not_found", 404), headers)
            return
        protocol, endpoint = found.protocol, found.endpoint
        module = PROTOCOL_MODULES[protocol]
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fields = body if isinstance(body, Mapping) else {}
        model = found.path_model or (fields.get("model") if isinstance(fields.get("model"), str) else None)
        stream = bool(module.is_stream(endpoint, fields, query))
        include_usage = getattr(module, "include_usage", None)  # OpenAI's protocol (and Groq's)
        wants_usage = include_usage is not None and include_usage(endpoint, fields)
        seq = next(self._seq)
        request_id = f"sim{seq:06d}"
        entry: dict[str, Any] = {
            "seq": seq,
            "protocol": protocol,
            "path": path,
            "endpoint": endpoint,
            "model": model,
            "stream": stream,
            "status": None,
            "usage": None,
            "headers": headers,
            "body": body,
            "response_headers": {},
            "started": started,
            "finished": None,
            "include_usage": wants_usage,
            "outcome": "ok",
            "complete": False,
            "query": query,
            "body_size": len(raw),
            "tool_results": module.tool_results(endpoint, fields),
        }
        key = (protocol, model or "")
        step = self._take_step(protocol, endpoint, stream)
        with self._lock:
            explicit = step.usage if step is not None and step.usage is not None else self._usage
            limiter, rate_model = self._limiter, self._rate_limits

        malformed = body is None or (model is None and protocol != "gemini")
        if malformed and (step is None or step.kind in ("ok", "delay", "tool_call", "stream_error", *MID_STREAM_KINDS)):
            step = Step.bad_request()

        kind = step.kind if step is not None else "ok"
        if kind == "drop_connection":
            entry.update(outcome=kind, finished=time.monotonic(), complete=True)
            self._record(entry)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return

        if kind == "raw":
            assert step is not None
            self._answer_raw(handler, entry, step)
            return

        if kind in ("rate_limited", "overloaded", "server_error", "bad_request"):
            assert step is not None
            self._answer_error(handler, module, entry, kind, step, limiter.windows(key), request_id, model)
            return

        # A successful answer (ok, delay, or the rate-limit model's decision).
        mt = module.max_tokens(endpoint, fields)
        tool = None
        if step is not None and step.kind == "tool_call":
            assert step.tool_name is not None
            tool = ToolCall(step.tool_name, step.tool_arguments or {})
            # A function call is answered whole (no max-tokens cut); by default one output token per piece.
            words, truncated = [], False
            plan = explicit if explicit is not None else default_plan(len(raw), len(tool.argument_pieces()))
        elif explicit is None:
            words, truncated = words_for(None, None, mt)
            plan = default_plan(len(raw), len(words))
        else:
            words, truncated = words_for(explicit.output, explicit.reasoning, mt)
            plan = explicit
        if endpoint in INPUT_ONLY_ENDPOINTS:
            plan = UsagePlan(input=plan.input)
        charge_in = plan.input or 0
        charge_out = 0 if endpoint in INPUT_ONLY_ENDPOINTS else plan.output or 0
        if endpoint == "count_tokens":
            windows = limiter.windows(key)
        elif step is not None:
            windows = limiter.charge(key, charge_in, charge_out)
        else:
            admission = limiter.admit(key, charge_in, charge_out)
            windows = admission.windows
            if not admission.allowed:
                model_kind = "overloaded" if admission.reason == "overloaded" else "rate_limited"
                refused = Step(model_kind, retry_after=admission.retry_after_s, retry_after_ms=True)
                entry["outcome"] = "model_" + model_kind
                self._answer_error(
                    handler, module, entry, model_kind, refused, windows, request_id, model, reason=admission.reason
                )
                return
        entry["outcome"] = kind
        call = Call(
            protocol=protocol,
            endpoint=endpoint,
            model=model or "",
            stream=stream,
            body=body,
            body_size=len(raw),
            request_id=request_id,
            created=int(time.time()),
            plan=plan,
            words=words,
            truncated=truncated,
            query=query,
            tool=tool,
        )
        if kind == "stream_error":  # a Bedrock stream that fails part-way: its usage is never delivered
            assert step is not None
            assert step.code is not None
            reply = module.stream_error(call, step.code, step.after_events)
        else:
            reply = module.success(call, with_usage_in_stream=wants_usage)
        reply.headers.update(module.limit_headers(windows, request_id))
        reply.headers[SIMULATED_HEADER] = "true"
        entry.update(
            status=reply.status,
            usage=None if endpoint in NO_USAGE_ENDPOINTS or kind == "stream_error" else plan,
            response_headers=dict(reply.headers),
        )
        self._record(entry)
        wait = step.seconds if step is not None and kind == "delay" else 0.0
        if rate_model is not None and endpoint not in INPUT_ONLY_ENDPOINTS:
            wait += rate_model.latency_s
            if rate_model.tokens_per_second and reply.events is None:
                wait += (plan.output or 0) / rate_model.tokens_per_second
        if wait > 0 and self._stopping.wait(wait):
            handler.close_connection = True
            self._finish(entry, complete=False)
            return
        tps = rate_model.tokens_per_second if rate_model is not None else None
        failure = step if step is not None and kind in MID_STREAM_KINDS else None
        if failure is not None:
            entry["usage"] = None  # the answer never reached its usage as a whole
        complete = _write_reply(
            handler, reply, tps=tps, stopping=self._stopping, failure=failure, error_event=module.stream_error_event()
        )
        self._finish(entry, complete=complete)

    def _answer_error(
        self,
        handler: _Handler,
        module: ModuleType,
        entry: dict[str, Any],
        kind: str,
        step: Step,
        windows: dict[str, Window],
        request_id: str,
        model: str | None,
        *,
        reason: str | None = None,
    ) -> None:
        protocol = entry["protocol"]
        if kind == "rate_limited":
            status = 429
            if reason is None:  # scripted: the request window is what ran out
                reason = "requests"
                req = windows["requests"]
                reset = step.retry_after if step.retry_after is not None else req.reset_s
                windows = {**windows, "requests": Window(req.limit, 0, reset)}
        elif kind == "overloaded":
            status = OVERLOADED_STATUS[protocol]
        elif kind == "server_error":
            status = step.status or 500
        else:
            status = 400
        kwargs: dict[str, Any] = {"reason": reason, "model": model, "retry_after": step.retry_after}
        if protocol == "anthropic":
            kwargs["request_id"] = request_id
        if protocol == "gemini" and kind == "rate_limited":
            limit_kind = reason if reason in windows else "requests"
            kwargs["limit"] = windows[limit_kind].limit
        if protocol == "bedrock":
            status = _bedrock.error_status(kind, status, step.code)
            kwargs["code"] = step.code
        body = module.error(kind, status, **kwargs)
        headers = module.limit_headers(windows, request_id)
        if protocol == "bedrock":
            headers.update(_bedrock.error_headers(kind, status, step.code))
        if module.SENDS_RETRY_AFTER and kind in ("rate_limited", "overloaded"):
            headers.update(retry_after_headers(step.retry_after, with_ms=step.retry_after_ms))
        headers[SIMULATED_HEADER] = "true"
        if entry["outcome"] == "ok":
            entry["outcome"] = kind
        entry.update(status=status, response_headers=dict(headers))
        self._record(entry)
        complete = _write_json(handler, status, body, headers)
        self._finish(entry, complete=complete)

    def _answer_raw(self, handler: _Handler, entry: dict[str, Any], step: Step) -> None:
        """A scripted answer sent exactly as written (hostile-input tests)."""
        status = step.status or 200
        headers = dict(step.raw_headers or {})
        if not any(name.lower() == "content-type" for name in headers):
            headers["content-type"] = "application/json" if step.raw_events is None else "text/event-stream"
        headers[SIMULATED_HEADER] = "true"
        entry.update(outcome="raw", status=status, response_headers=dict(headers))
        self._record(entry)
        if step.raw_events is None:
            data = (step.raw_body or "").encode()
            reply = Reply(status=status, headers={**headers, "content-length": str(len(data))})
            complete = _write_bytes(handler, reply, data)
        else:
            reply = Reply(status=status, headers=headers, events=[SSEEvent(e.encode()) for e in step.raw_events])
            complete = _write_reply(handler, reply, tps=None, stopping=self._stopping)
        self._finish(entry, complete=complete)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._served.append(entry)

    def _finish(self, entry: dict[str, Any], *, complete: bool) -> None:
        with self._lock:
            entry["complete"] = complete
            entry["finished"] = time.monotonic()

    # -- admin (cross-process control) --------------------------------------------------------------------------

    def _admin(self, handler: _Handler, method: str, path: str, raw: bytes) -> None:
        headers = {SIMULATED_HEADER: "true"}
        try:
            payload = json.loads(raw) if raw else None
            result = self._admin_action(method, path.rstrip("/"), payload)
        except (ValueError, TypeError, KeyError) as exc:
            _write_json(handler, 400, {"error": {"message": str(exc), "type": "invalid_request_error"}}, headers)
            return
        if result is _NOT_FOUND:
            _write_json(handler, 404, {"error": {"message": f"unknown admin path {method} {path}"}}, headers)
            return
        _write_json(handler, 200, result, headers)

    def _admin_action(self, method: str, path: str, payload: Any) -> Any:
        if path == "/_sim/health" and method == "GET":
            return {"status": "ok", "simulated": True, "base_url": self.base_url}
        if path == "/_sim/served" and method == "GET":
            return [s.to_dict() for s in self.served]
        if path == "/_sim/script" and method == "GET":
            return [s.to_dict() for s in self.pending_steps]
        if path == "/_sim/script" and method == "POST":
            items = payload.get("steps") if isinstance(payload, Mapping) else payload
            if not isinstance(items, list):
                raise ValueError("expected a JSON list of steps")
            steps = [Step.from_dict(item) for item in items]
            self.script(*steps)
            return {"queued": len(steps)}
        if path == "/_sim/reset" and method == "POST":
            self.reset()
            return {"reset": True}
        if path == "/_sim/usage" and method == "POST":
            self.usage = UsagePlan.from_dict(payload) if payload is not None else None
            return {"usage": payload}
        if path == "/_sim/usage" and method == "GET":
            plan = self.usage
            return plan.to_dict() if plan is not None else None
        return _NOT_FOUND


_NOT_FOUND = object()


def _snapshot(entry: dict[str, Any]) -> ServedRequest:
    """A frozen copy of a log entry (its mappings copied too, so callers cannot alter the log)."""
    data = {k: v for k, v in entry.items() if k != "seq"}
    for name in ("headers", "response_headers", "query"):
        data[name] = dict(data[name])
    data["body"] = copy.deepcopy(data["body"])
    return ServedRequest(**data)


# -- HTTP plumbing ----------------------------------------------------------------------------------------------


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        total = 0
        while True:
            size_line = handler.rfile.readline(1024)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise ValueError("request body too large")
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(1024)
    length = int(handler.headers.get("content-length") or 0)
    if length > MAX_BODY:
        raise ValueError("request body too large")
    return handler.rfile.read(length) if length > 0 else b""


def _start(handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str]) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()


def _write_json(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: Mapping[str, str]) -> bool:
    data = json.dumps(body, separators=(",", ":")).encode()
    reply = Reply(status, {**headers, "content-type": "application/json", "content-length": str(len(data))})
    return _write_bytes(handler, reply, data)


def _write_bytes(handler: BaseHTTPRequestHandler, reply: Reply, data: bytes) -> bool:
    """Write a whole response: status, ``reply.headers`` as they are (content length included), body."""
    try:
        _start(handler, reply.status, reply.headers)
        handler.wfile.write(data)
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True
        return False
    return True


def _write_reply(
    handler: _Handler,
    reply: Reply,
    *,
    tps: float | None,
    stopping: threading.Event,
    failure: Step | None = None,
    error_event: bytes = b"",
) -> bool:
    """Write a JSON reply, or stream its events as chunked SSE, pacing them at ``tps`` output tokens/s.

    With a mid-stream ``failure`` step, only its ``after_events`` events are sent, then the stream fails its way.
    """
    if reply.events is None:
        return _write_json(handler, reply.status, reply.json, reply.headers)
    headers = {
        **reply.headers,
        "content-type": reply.content_type or "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "transfer-encoding": "chunked",
    }
    events = reply.events
    if failure is not None:
        events = events[: min(failure.after_events, max(0, len(events) - 1))]
    try:
        _start(handler, reply.status, headers)
        for event in events:
            if tps and event.tokens > 0 and stopping.wait(event.tokens / tps):
                handler.close_connection = True
                return False
            _write_chunk(handler, event.data)
        if failure is not None:
            _fail_stream(handler, failure, stopping, error_event)
            return False
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True
        return False
    return True


def _write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def _fail_stream(handler: _Handler, failure: Step, stopping: threading.Event, error_event: bytes) -> None:
    """End a streamed answer part-way: the provider's error event, or a connection cut (at once or after a stall)."""
    if failure.kind == "error_event":
        _write_chunk(handler, error_event)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
        return
    if failure.kind == "stall_mid_stream":
        stopping.wait(failure.seconds)
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
