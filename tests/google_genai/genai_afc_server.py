"""A minimal Gemini endpoint on 127.0.0.1 that answers a function call first, then text.

Only for automatic function calling (AFC), which the package's simulator cannot answer yet (it only answers
text). A request whose last turn carries a ``functionResponse`` gets the final text answer; any other gets a
``functionCall``. Each answer has its own usage, so a test can tell one hop's tokens from the sum.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CALL_USAGE = {"promptTokenCount": 40, "candidatesTokenCount": 6, "thoughtsTokenCount": 4, "totalTokenCount": 50}
"""Hop 1 (the model asks for the function): input 40, output 10, reasoning 4."""
ANSWER_USAGE = {
    "promptTokenCount": 70,
    "cachedContentTokenCount": 30,
    "toolUsePromptTokenCount": 5,
    "candidatesTokenCount": 12,
    "totalTokenCount": 87,
}
"""Hop 2 (the final answer): input 75, output 12, cache_read 30, tool_use 5."""


def _answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    contents = body.get("contents") or []
    parts = (contents[-1].get("parts") or []) if contents else []
    if any("functionResponse" in part for part in parts):
        part: dict[str, Any] = {"text": "It is sunny in Paris."}
        usage = ANSWER_USAGE
    else:
        part = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
        usage = CALL_USAGE
    return {
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?", 1)[0]
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        self.server.requests.append(path)  # type: ignore[attr-defined]
        data = _answer(body, model)
        if path.endswith(":streamGenerateContent"):
            payload = f"data: {json.dumps(data)}\r\n\r\n".encode()
            content_type = "text/event-stream"
        else:
            payload = json.dumps(data).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AfcServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


@contextmanager
def afc_server() -> Iterator[AfcServer]:
    server = AfcServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
