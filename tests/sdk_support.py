"""What the test environment has: google-genai 3.x and genai-prices need Python >= 3.11 (on 3.10 they are absent)."""

from __future__ import annotations

import importlib.util

import pytest


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


HAS_GENAI = installed("google.genai")
FULL_STACK = HAS_GENAI and installed("genai_prices")
"""All three SDKs and genai-prices."""

needs_full_stack = pytest.mark.skipif(not FULL_STACK, reason="needs google-genai and genai-prices (Python >= 3.11)")


def client_base_url(sim, sdk: str) -> str:
    """The base URL a client of ``sdk`` (a `tokenrate.sdks` name) needs on the simulator, for the installed version.

    together 2.x keeps ``/v1`` in its base URL (``https://api.together.xyz/v1``); 3.x has it in its paths.
    """
    base = sim.base_url_for(sdk)
    if sdk == "together":
        import importlib.metadata

        from packaging.version import Version

        if Version(importlib.metadata.version("together")) < Version("3"):
            base += "/v1"
    return base
