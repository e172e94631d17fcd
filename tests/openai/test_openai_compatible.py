"""The openai SDK pointed at another provider's base URL: named and priced as that provider.

A real ``openai`` client keeps Groq's, DeepSeek's or OpenRouter's real base URL; its HTTP transport forwards
every request to the simulated provider, so nothing reaches the network. Expected costs come from genai-prices
itself, given the same base URL.
"""

from __future__ import annotations

import httpx2
import openai
import pytest
from forwarding import forwarding_transport

from tokenrate.providers.openai_compatible import provider_for_url
from tokenrate.simulator import UsagePlan

genai_prices = pytest.importorskip("genai_prices", reason="genai-prices needs Python >= 3.11")

MESSAGES = [{"role": "user", "content": "Say hello"}]
PLAN = UsagePlan(input=1_000, output=100, cache_read=200)

PROVIDERS = {
    # base URL: (gen_ai.provider.name, a model that provider serves)
    "https://api.groq.com/openai/v1": ("groq", "llama-3.1-8b-instant"),
    "https://api.deepseek.com": ("deepseek", "deepseek-chat"),
    "https://openrouter.ai/api/v1": ("openrouter", "openai/gpt-4o-mini"),
}
MOVED = {"https://api.together.ai/v1": ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")}
"""Hosts genai-prices does not match yet (`MOVED_HOSTS`): priced as the provider id tokenrate names."""


def _client(sim, base_url: str) -> tuple[openai.OpenAI, type]:
    transport = forwarding_transport(httpx2, sim, base_url)
    client = openai.OpenAI(
        base_url=base_url, api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=transport)
    )
    return client, transport


def _expected_cost(model: str, base_url: str) -> float:
    usage = genai_prices.Usage(input_tokens=1_000, cache_read_tokens=200, output_tokens=100)
    if base_url in MOVED:
        return float(genai_prices.calc_price(usage, model, provider_id=MOVED[base_url][0]).total_price)
    return float(genai_prices.calc_price(usage, model, provider_api_url=base_url).total_price)


@pytest.mark.parametrize("base_url", sorted({**PROVIDERS, **MOVED}))
def test_the_provider_behind_the_base_url_names_and_prices_the_call(base_url, sim, telemetry, records, priced):
    name, model = {**PROVIDERS, **MOVED}[base_url]
    sim.usage = PLAN
    client, transport = _client(sim, base_url)
    client.chat.completions.create(model=model, messages=MESSAGES)
    list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))

    host = httpx2.URL(base_url).host
    assert [url.split("/chat/")[0] for url in transport.forwarded] == [base_url, base_url]
    assert [s.path for s in sim.served] == ["/v1/chat/completions"] * 2
    expected_cost = _expected_cost(model, base_url)
    for record in records.calls:
        assert (record.info.provider, record.info.server_address, record.info.server_port) == (name, host, 443)
        assert record.cost_usd == pytest.approx(expected_cost, rel=1e-9)
        assert record.rate_limits is not None  # the x-ratelimit-* headers, read as OpenAI's
    assert {dict(span.attributes)["gen_ai.provider.name"] for span in telemetry.spans()} == {name}
    assert telemetry.total("tokenrate.requests", gen_ai__provider__name=name) == 2


def test_an_unknown_base_url_stays_openai_with_its_server_address(sim, telemetry, records):
    """A local vLLM or Ollama (here: the simulator itself) is recorded as ``openai`` at its own address."""
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    client.chat.completions.create(model="my-local-model", messages=MESSAGES)
    assert (records.last.info.provider, records.last.info.server_address) == ("openai", "127.0.0.1")
    assert records.last.info.server_port == sim.port


def test_the_name_is_worked_out_once_per_base_url(sim, telemetry, records, monkeypatch):
    from tokenrate.providers import openai_compatible

    looked_up: list[str] = []
    real = openai_compatible._genai_provider_id

    def counting(base_url: str) -> str | None:
        looked_up.append(base_url)
        return real(base_url)

    monkeypatch.setattr(openai_compatible, "_genai_provider_id", counting)
    monkeypatch.setattr(openai_compatible.provider_of, "_cache", {})
    client, _ = _client(sim, "https://api.groq.com/openai/v1")
    for _ in range(3):
        client.chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)
    assert looked_up == ["https://api.groq.com/openai/v1/"]
    assert [r.info.provider for r in records.calls] == ["groq"] * 3


@pytest.mark.parametrize(
    ("base_url", "name"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.x.ai/v1", "x_ai"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("https://api.perplexity.ai", "perplexity"),
        ("https://my-resource.openai.azure.com/openai/v1", "azure.ai.openai"),
        ("https://my-resource.cognitiveservices.azure.com/openai/v1", "azure.ai.openai"),
        ("https://my-resource.services.ai.azure.com/models", "azure.ai.inference"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
        ("https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1", "aws.bedrock"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.together.ai/v1", "together"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.cerebras.ai/v1", "cerebras"),
        ("http://localhost:8000/v1", "openai"),
        ("http://127.0.0.1:11434/v1", "openai"),
    ],
)
def test_semconv_names_where_they_exist_else_a_stable_lower_case_one(base_url, name):
    assert provider_for_url(base_url) == name


def test_moved_hosts_are_only_those_genai_prices_does_not_match_yet():
    """Once genai-prices knows a moved host itself, its `MOVED_HOSTS` entry is redundant and should go."""
    from genai_prices import data_snapshot

    from tokenrate.providers.openai_compatible import MOVED_HOSTS

    for host in MOVED_HOSTS:
        with pytest.raises(LookupError):
            data_snapshot.get_snapshot().find_provider(None, None, f"https://{host}/v1")


def test_the_azure_client_is_azure_openai_whatever_its_base_url(sim, telemetry, records):
    client = openai.AzureOpenAI(base_url=sim.openai_base_url, api_version="2024-10-21", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):  # the simulator does not serve Azure's deployment paths
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert records.last.info.provider == "azure.ai.openai"


def test_rate_limit_headers_with_the_window_in_their_name_are_read_too():
    """Cerebras names the window in its ``x-ratelimit-*`` headers and sends resets in seconds."""
    from tokenrate.providers.openai import OpenAIProvider

    headers = {
        "x-ratelimit-limit-requests-day": "14400",
        "x-ratelimit-remaining-requests-day": "14398",
        "x-ratelimit-reset-requests-day": "33011.38",
        "x-ratelimit-limit-tokens-minute": "60000",
        "x-ratelimit-remaining-tokens-minute": "59100",
        "x-ratelimit-reset-tokens-minute": "11.5",
    }
    limits = OpenAIProvider().rate_limits(headers)
    assert {(w.kind, w.limit, w.remaining, w.reset_s) for w in limits.windows} == {
        ("requests", 14400, 14398, 33011.38),
        ("tokens", 60000, 59100, 11.5),
    }
