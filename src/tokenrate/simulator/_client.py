"""`SimulatorClient`: drive a simulated provider running in another process through its ``/_sim/`` endpoints."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tokenrate.simulator._model import ServedRequest, Step, UsagePlan


class SimulatorClient:
    """The same controls as `SimulatedProvider` (script, served, reset, usage), over HTTP. Stdlib only."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None and method == "GET" else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read() or b"null")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/health")

    def script(self, *steps: Step) -> int:
        return int(self._call("POST", "/_sim/script", [step.to_dict() for step in steps])["queued"])

    def served(self) -> list[ServedRequest]:
        return [ServedRequest.from_dict(item) for item in self._call("GET", "/_sim/served")]

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def set_usage(self, plan: UsagePlan | None) -> None:
        self._call("POST", "/_sim/usage", plan.to_dict() if plan is not None else None)
