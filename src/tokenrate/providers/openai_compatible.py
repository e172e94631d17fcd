"""Which provider an OpenAI-compatible base URL reaches: DeepSeek, Groq, xAI, Mistral, OpenRouter, Together, ...

The ``openai`` SDK talks to many providers through ``base_url``. Their names come from the URL, with no URL
table of our own: genai-prices keeps one (each of its providers has an ``api_pattern``), so the base URL is
handed to genai-prices (``find_provider(provider_api_url=...)``, the lookup ``calc_price`` does) and its
provider id becomes ``gen_ai.provider.name``: the semconv well-known value where one exists (``x_ai``,
``mistral_ai``, ``azure.ai.openai``, ``gcp.gemini``...), else genai-prices' own stable lower-case id
(``openrouter``, ``together``, ``fireworks``, ``cerebras``...). Cost then follows the same provider (tokenrate's
pricing maps these names back to genai-prices ids).

A URL genai-prices does not know (a local vLLM or Ollama, a company gateway) stays ``openai``; its
``server.address`` says where it went. The one exception is `MOVED_HOSTS`: a provider's new API host that
genai-prices' data does not match yet (Together moved from ``api.together.xyz`` to ``api.together.ai``).
Without genai-prices (Python 3.10) every base URL is ``openai``.

Resolved once per base-URL object (`PerBaseURL`), never per call.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tokenrate._safety import report
from tokenrate.cost._genai import PROVIDER_IDS
from tokenrate.providers._lifecycle import PerBaseURL

DEFAULT = "openai"

SEMCONV_NAMES: dict[str, str] = {
    genai_id: name
    for name, genai_id in PROVIDER_IDS.items()
    if list(PROVIDER_IDS.values()).count(genai_id) == 1 and name != genai_id
}
"""genai-prices id -> semconv name, where they differ and one name fits (``x-ai`` -> ``x_ai``): the inverse of
the table pricing uses. Azure and Google have several semconv names, told apart by the URL (`_refine`)."""


MOVED_HOSTS: dict[str, str] = {"api.together.ai": "together"}
"""API host -> genai-prices provider id, only for hosts a provider moved to that genai-prices does not match yet.
Each entry is checked by a test that fails once genai-prices knows the host itself (then the entry goes)."""


def provider_for_url(base_url: str) -> str:
    """``gen_ai.provider.name`` for an OpenAI-compatible base URL (``openai`` when genai-prices does not know it)."""
    genai_id = _genai_provider_id(base_url)
    if genai_id is None:
        return DEFAULT
    return _refine(genai_id, base_url) or SEMCONV_NAMES.get(genai_id, genai_id)


def _genai_provider_id(base_url: str) -> str | None:
    try:
        from genai_prices import data_snapshot
    except ImportError:  # Python 3.10: genai-prices is not installed
        return None
    try:
        return data_snapshot.get_snapshot().find_provider(None, None, base_url).id
    except LookupError:
        return MOVED_HOSTS.get((urlsplit(base_url).hostname or "").lower())
    except Exception as exc:
        report("provider name from the base URL", exc)
        return None


def _refine(genai_id: str, base_url: str) -> str | None:
    """The semconv name for a genai-prices provider that stands for several (Azure, Google)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if genai_id == "azure":  # Azure OpenAI (its own hosts, or /openai paths on AI Foundry) vs Azure AI Inference
        return (
            "azure.ai.openai" if host.endswith(".openai.azure.com") or "/openai" in parts.path else "azure.ai.inference"
        )
    if genai_id == "google":
        if host.startswith("generativelanguage."):
            return "gcp.gemini"
        return "gcp.vertex_ai" if "aiplatform." in host else "gcp.gen_ai"
    return None


provider_of = PerBaseURL(provider_for_url)
"""`provider_for_url` of a client's base URL object, worked out once per object."""
