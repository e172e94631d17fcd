"""tokenrate: OpenTelemetry instrumentation for LLM SDKs (tokens by type, throttling, rate limits, cost)."""

from __future__ import annotations

__version__ = "0.1.0"
