"""Custom price files (TOKENRATE_PRICES): format, precedence, clear errors that never crash the app."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cost_helpers import make_record

from tokenrate.cost import (
    CustomPrices,
    PriceFileError,
    Pricer,
    configure_pricing,
    get_pricer,
    load_price_file,
    price_record,
    set_pricer,
)
from tokenrate.pipeline import remove_enricher

GOOD_TOML = """\
# fine-tuned and self-hosted models
[[models]]
model = "gpt-4o"            # overrides genai-prices for OpenAI's gpt-4o
provider = "openai"
input = 2.0
cache_read = 0.5
output = 8.0

[[models]]
model = "ft:gpt-4o-mini:acme:*"
input = 0.3
output = 1.2
request = 0.001
[models.server_tools]
web_search = 0.01

[[models]]
model = "llama-3-local"
provider = "openai"
input = 0
output = 0
"""


@pytest.fixture(autouse=True)
def fresh_pricer():
    yield
    set_pricer(None)
    remove_enricher(price_record)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_custom_price_wins_over_genai_prices(tmp_path):
    prices = load_price_file(write(tmp_path, "prices.toml", GOOD_TOML))
    pricer = Pricer(prices)
    record = make_record("openai", "gpt-4o", input=10_000, cache_read=4_000, output=500)

    # (6000 x $2 + 4000 x $0.5 + 500 x $8) per million tokens
    assert pricer.cost(record) == pytest.approx((6_000 * 2.0 + 4_000 * 0.5 + 500 * 8.0) / 1e6)
    # The same model through another provider is not covered by the entry (provider = "openai").
    azure = make_record("azure.ai.openai", "gpt-4o", input=10_000, cache_read=4_000, output=500)
    assert pricer.cost(azure) != pricer.cost(record)


def test_wildcards_per_request_and_server_tool_charges(tmp_path):
    pricer = Pricer(load_price_file(write(tmp_path, "prices.toml", GOOD_TOML)))
    record = make_record(
        "anthropic", "ft:gpt-4o-mini:acme:Z9", input=1_000, cache_write=200, output=100, tools={"web_search": 3}
    )
    # cache_write has no price of its own: billed as input. Plus $0.001 per call and 3 x $0.01 searches.
    expected = (1_000 * 0.3 + 100 * 1.2) / 1e6 + 0.001 + 3 * 0.01
    assert pricer.cost(record) == pytest.approx(expected)
    assert pricer.cost(make_record("openai", "llama-3-local", input=50_000, output=900)) == 0.0
    assert pricer.cost(make_record("openai", "FT:GPT-4O-MINI:ACME:q", input=1_000, output=0)) == pytest.approx(
        1_000 * 0.3 / 1e6 + 0.001
    )


def test_exact_entry_beats_a_wildcard_listed_first():
    prices = CustomPrices([])
    from tokenrate.cost.custom import validate_price_document

    entries = validate_price_document(
        {
            "models": [
                {"model": "acme-*", "input": 1, "output": 1},
                {"model": "acme-7b", "input": 5, "output": 5},
            ]
        }
    )
    prices = CustomPrices(entries)
    assert prices.find(("openai",), "acme-7b").input == 5
    assert prices.find(("openai",), "acme-13b").input == 1
    assert prices.find(("openai",), "other") is None


def test_json_format_is_the_same_document(tmp_path):
    doc = {"models": [{"model": "my-model", "provider": "anthropic", "input": 1.5, "output": 3}]}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    pricer = Pricer(load_price_file(path))
    assert pricer.cost(make_record("anthropic", "my-model", input=1_000_000, output=0)) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        ("bad.toml", '[[models]]\nmodel = "x"\ninput = 0.3x\noutput = 1\n', ["not valid TOML", "line 3"]),
        ("bad.json", '{"models": [\n  {"model": "x", "input": 1,, "output": 2}\n]}', ["not valid JSON", "line 2"]),
        (
            "type.toml",
            '[[models]]\nmodel = "x"\ninput = "cheap"\noutput = 1\n',
            ["models[0].input", "expected a number", "string"],
        ),
        (
            "negative.json",
            '{"models": [{"model": "a", "input": 1, "output": 1}, {"model": "b", "input": 1, "output": -2}]}',
            ["models[1].output", "non-negative"],
        ),
        ("unknown.toml", '[[models]]\nmodel = "x"\ninput = 1\noutput = 1\ninptu = 2\n', ["models[0].inptu", "unknown"]),
        ("missing.toml", '[[models]]\nmodel = "x"\ninput = 1\n', ["models[0].output", "missing"]),
        (
            "tool.toml",
            '[[models]]\nmodel="x"\ninput=1\noutput=1\n[models.server_tools]\nweb_search="a"\n',
            ["models[0].server_tools.web_search"],
        ),
        ("top.json", '{"model": []}', ["model", "unknown top-level key"]),
        ("nomodels.json", "{}", ["models", "missing"]),
    ],
)
def test_malformed_files_name_the_line_or_field(tmp_path, name, text, fragments):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PriceFileError) as excinfo:
        load_price_file(path)
    message = str(excinfo.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_malformed_file_is_one_warning_and_the_app_carries_on(tmp_path, caplog):
    path = write(tmp_path, "prices.toml", '[[models]]\nmodel = "gpt-4o"\ninput = 1\noutput = [\n')
    caplog.set_level(logging.WARNING, logger="tokenrate")

    configure_pricing(prices_path=path, warm=False)
    configure_pricing(prices_path=path, warm=False)  # configured again: still one warning

    warnings = [r for r in caplog.records if str(path) in r.getMessage()]
    assert len(warnings) == 1
    assert "line" in warnings[0].getMessage()
    assert "without these custom prices" in warnings[0].getMessage()
    # No custom prices, but genai-prices still prices gpt-4o and the enricher works.
    assert get_pricer().custom is None
    priced = price_record(make_record("openai", "gpt-4o", input=1_000, output=100))
    if get_pricer().genai_prices_available:
        assert priced.cost_usd is not None
        assert priced.cost_usd > 0


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PriceFileError, match="cannot read price file"):
        load_price_file(tmp_path / "nope.toml")


def run_python(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, env=env
    )


def test_without_tomllib_toml_is_refused_with_a_clear_message_and_json_still_works(tmp_path):
    """Python 3.10 has no tomllib: simulated by hiding tomllib (and tomli) from the import system."""
    toml_path = write(tmp_path, "p.toml", '[[models]]\nmodel = "m"\ninput = 1\noutput = 1\n')
    json_path = tmp_path / "p.json"
    json_path.write_text('{"models": [{"model": "m", "input": 1, "output": 1}]}', encoding="utf-8")
    result = run_python(
        f"""
        import sys
        sys.modules["tomllib"] = None
        sys.modules["tomli"] = None
        from tokenrate.cost import load_price_file, PriceFileError
        try:
            load_price_file({str(toml_path)!r})
        except PriceFileError as exc:
            print("ERROR:", exc)
        print("JSON:", len(load_price_file({str(json_path)!r})))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "needs Python >= 3.11 (tomllib) or the 'tomli' package" in result.stdout
    assert "JSON: 1" in result.stdout


def test_without_genai_prices_only_custom_prices_and_one_warning(tmp_path):
    """Python 3.10 has no genai-prices: simulated by hiding the package from the import system."""
    path = write(tmp_path, "p.toml", '[[models]]\nmodel = "mine"\ninput = 1\noutput = 2\n')
    result = run_python(
        f"""
        import logging, sys, time
        sys.modules["genai_prices"] = None
        logging.basicConfig(level=logging.WARNING, format="LOG %(message)s")
        from tokenrate.cost import configure_pricing, get_pricer
        from tokenrate.records import CallInfo, CallRecord, TokenUsage
        configure_pricing(prices_path={str(path)!r}, warm=False)

        def rec(model):
            return CallRecord(info=CallInfo(provider="openai", operation="chat", request_model=model),
                              started_at=0, ended_at=1, started_unix=time.time(),
                              usage=TokenUsage(input=1_000_000, output=1_000_000))

        print("gpt-4o:", get_pricer().cost(rec("gpt-4o")))
        print("gpt-4o-mini:", get_pricer().cost(rec("gpt-4o-mini")))
        print("mine:", get_pricer().cost(rec("mine")))
        print("unknown:", sorted(get_pricer().unknown_cost_calls().items()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "gpt-4o: None" in result.stdout
    assert "gpt-4o-mini: None" in result.stdout
    assert "mine: 3.0" in result.stdout
    assert "('openai', 'gpt-4o'), 1" in result.stdout
    logs = [line for line in result.stderr.splitlines() if line.startswith("LOG ")]
    assert len(logs) == 1, result.stderr
    assert "genai-prices is not available" in logs[0]
