"""An HTTP transport that sends every request to the simulated provider instead of the host in its URL.

It lets a real SDK client keep a real provider's base URL (so tokenrate sees, names and prices that provider)
while nothing reaches the network: the request's path under ``base_path`` is re-rooted under ``sim_path`` on
the simulator. Any request outside ``base_path`` fails the test instead of going anywhere.
"""

from __future__ import annotations

from typing import Any


def forwarding_transport(http: Any, sim: Any, base_url: str, sim_path: str = "/v1") -> Any:
    """A transport of ``http`` (the ``httpx2`` or ``httpx`` module) for a client whose base URL is ``base_url``."""
    target = http.URL(base_url)
    base_path = target.path.rstrip("/")

    class ToSimulator(http.HTTPTransport):
        forwarded: list[str] = []
        """Every original URL, as the SDK sent it."""

        def handle_request(self, request: Any) -> Any:
            url = request.url
            if url.host != target.host or not url.path.startswith(base_path + "/"):
                raise AssertionError(f"a request left the simulated provider: {url}")
            self.forwarded.append(str(url))
            request.url = url.copy_with(
                scheme="http", host=sim.host, port=sim.port, path=sim_path + url.path[len(base_path) :]
            )
            return super().handle_request(request)

    ToSimulator.forwarded = []
    return ToSimulator()
