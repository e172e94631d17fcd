"""Custom prices from a file (``TOKENRATE_PRICES=path``): for fine-tuned, self-hosted or brand-new models.

A custom entry wins over genai-prices for the models it names. The file is TOML (``.toml``; Python >= 3.11, or
3.10 with ``tomli`` installed) or JSON (``.json``; always works). Prices are USD per **million** tokens,
except ``request`` (USD per call) and ``server_tools`` (USD per provider-side tool request)::

    # prices.toml
    [[models]]
    model = "ft:gpt-4o-mini-2024-07-18:acme::A1b2C3"  # required: the model name, case-insensitive;
                                                      # `*` and `?` work as wildcards ("ft:gpt-4o-mini:*")
    provider = "openai"    # optional: only calls of this gen_ai.provider.name (openai, anthropic, gcp.gemini,
                           # aws.bedrock, ...); omitted = any provider
    input = 0.30           # required: USD per 1M input tokens that were neither read from nor written to a cache
    output = 1.20          # required: USD per 1M output tokens (reasoning tokens included)
    cache_read = 0.15      # optional: USD per 1M input tokens read from the cache (default: the input price)
    cache_write = 0.375    # optional: USD per 1M input tokens written to the cache (default: the input price)
    request = 0.0          # optional: USD per call, whatever its tokens

    [models.server_tools]  # optional: USD per provider-side tool request, by tool name
    web_search = 0.01

The JSON form is the same document: ``{"models": [{"model": "...", "input": 0.3, "output": 1.2}]}``.

Matching: an entry naming the exact model wins over a wildcard entry; among equals, the first in the file wins.
A file that cannot be used (syntax error, unknown field, wrong type) raises `PriceFileError` naming the line
(syntax) or the field path (``models[2].input``); the caller logs it once and carries on without the file.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenrate._toml import toml_module
from tokenrate.errors import PriceFileError

PER_MILLION = 1_000_000

_NUMBER_FIELDS = ("input", "output", "cache_read", "cache_write", "request")
_REQUIRED = ("model", "input", "output")
_ALLOWED = frozenset({"model", "provider", "server_tools", *_NUMBER_FIELDS})


@dataclass(frozen=True, slots=True)
class CustomPrice:
    """One model's price from the file. Token prices are USD per million tokens."""

    model: str
    input: float
    output: float
    provider: str | None = None
    cache_read: float | None = None
    cache_write: float | None = None
    request: float = 0.0
    server_tools: Mapping[str, float] = field(default_factory=dict)

    @property
    def is_pattern(self) -> bool:
        return any(ch in self.model for ch in "*?[")

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int,
        cache_write_tokens: int,
        server_tool_requests: Mapping[str, int],
    ) -> float:
        """USD for one call. Cache reads/writes are parts of ``input_tokens`` and priced instead of it."""
        cache_read_price = self.input if self.cache_read is None else self.cache_read
        cache_write_price = self.input if self.cache_write is None else self.cache_write
        uncached = max(0, input_tokens - cache_read_tokens - cache_write_tokens)
        token_usd = (
            uncached * self.input
            + cache_read_tokens * cache_read_price
            + cache_write_tokens * cache_write_price
            + output_tokens * self.output
        ) / PER_MILLION
        tools_usd = 0.0
        if self.server_tools and server_tool_requests:
            for tool, count in server_tool_requests.items():
                tools_usd += self.server_tools.get(tool, 0.0) * count
        return token_usd + self.request + tools_usd


class CustomPrices:
    """The entries of one price file, with a lookup by (provider, model)."""

    def __init__(self, entries: list[CustomPrice], source: str = "<memory>") -> None:
        self.entries = tuple(entries)
        self.source = source
        self._exact: dict[str, list[CustomPrice]] = {}
        self._patterns: list[tuple[re.Pattern[str], CustomPrice]] = []
        for entry in entries:
            if entry.is_pattern:
                regex = re.compile(fnmatch.translate(entry.model.lower()))
                self._patterns.append((regex, entry))
            else:
                self._exact.setdefault(entry.model.lower(), []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, providers: tuple[str, ...], model: str) -> CustomPrice | None:
        """The entry for ``model`` called through one of ``providers`` (names compared case-insensitively)."""
        name = model.lower()
        for entry in self._exact.get(name, ()):
            if _provider_ok(entry, providers):
                return entry
        for regex, entry in self._patterns:
            if regex.match(name) and _provider_ok(entry, providers):
                return entry
        return None


def _provider_ok(entry: CustomPrice, providers: tuple[str, ...]) -> bool:
    return entry.provider is None or entry.provider.lower() in providers


# -- reading the file --------------------------------------------------------------------------------------------


def load_price_file(path: str | Path) -> CustomPrices:
    """Read and check a price file; raises `PriceFileError` with the line or field at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"cannot read price file {str(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PriceFileError(f"price file {str(path)!r} is not UTF-8 text: {exc}") from exc
    document = parse_price_text(text, fmt=_format_of(path, text), source=str(path))
    return CustomPrices(validate_price_document(document, source=str(path)), source=str(path))


def _format_of(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".toml":
        return "toml"
    return "json" if text.lstrip().startswith(("{", "[")) else "toml"


def parse_price_text(text: str, *, fmt: str, source: str = "<text>") -> Any:
    """Parse TOML or JSON text; syntax errors become `PriceFileError` naming the line and column."""
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PriceFileError(
                f"price file {source!r} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from exc
    toml = toml_module()
    if toml is None:
        raise PriceFileError(
            f"price file {source!r} is TOML, which needs Python >= 3.11 (tomllib) or the 'tomli' package; "
            "install tomli or write the same prices as JSON (a .json file)"
        )
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)", or "(at end of document)" for a truncated file.
        where = "" if "line" in str(exc) else f" (the file ends at line {text.count(chr(10)) + 1})"
        raise PriceFileError(f"price file {source!r} is not valid TOML: {exc}{where}") from exc


def validate_price_document(document: Any, *, source: str = "<text>") -> list[CustomPrice]:
    """Check the parsed document against the format; errors name the field path, e.g. ``models[1].input``."""

    def fail(where: str, problem: str) -> PriceFileError:
        return PriceFileError(f"price file {source!r}: {where}: {problem}")

    if not isinstance(document, dict):
        raise fail("top level", f"expected a table/object with a 'models' list, got {_type_name(document)}")
    unknown = sorted(set(document) - {"models"})
    if unknown:
        raise fail(unknown[0], "unknown top-level key (expected only 'models')")
    models = document.get("models")
    if models is None:
        raise fail("models", "missing: add one [[models]] table (TOML) or a 'models' list (JSON) per model")
    if not isinstance(models, list):
        raise fail("models", f"expected a list of tables/objects, got {_type_name(models)}")

    entries: list[CustomPrice] = []
    for index, raw in enumerate(models):
        where = f"models[{index}]"
        if not isinstance(raw, dict):
            raise fail(where, f"expected a table/object, got {_type_name(raw)}")
        for key in sorted(raw):
            if key not in _ALLOWED:
                raise fail(f"{where}.{key}", f"unknown field (allowed: {', '.join(sorted(_ALLOWED))})")
        for key in _REQUIRED:
            if key not in raw:
                raise fail(f"{where}.{key}", "missing (required)")
        model = raw["model"]
        if not isinstance(model, str) or not model.strip():
            raise fail(f"{where}.model", f"expected a non-empty string, got {_type_name(model)}")
        provider = raw.get("provider")
        if provider is not None and (not isinstance(provider, str) or not provider.strip()):
            raise fail(f"{where}.provider", f"expected a non-empty string, got {_type_name(provider)}")
        numbers = {key: _price(raw[key], f"{where}.{key}", fail) for key in _NUMBER_FIELDS if key in raw}
        tools_raw = raw.get("server_tools", {})
        if not isinstance(tools_raw, dict):
            raise fail(f"{where}.server_tools", f"expected a table/object of prices, got {_type_name(tools_raw)}")
        tools = {str(tool): _price(value, f"{where}.server_tools.{tool}", fail) for tool, value in tools_raw.items()}
        entries.append(
            CustomPrice(
                model=model.strip(),
                provider=provider.strip() if provider is not None else None,
                input=numbers["input"],
                output=numbers["output"],
                cache_read=numbers.get("cache_read"),
                cache_write=numbers.get("cache_write"),
                request=numbers.get("request", 0.0),
                server_tools=tools,
            )
        )
    return entries


def _price(value: Any, where: str, fail: Callable[[str, str], PriceFileError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(where, f"expected a number (USD), got {_type_name(value)} {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise fail(where, f"expected a finite, non-negative number, got {value!r}")
    return number


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table/object"
    return type(value).__name__
