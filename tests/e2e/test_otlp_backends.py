"""tokenrate → OTLP → a real collector → Prometheus (and Phoenix for spans), queried back as Grafana would.

The workload is ``examples/otlp_export.py``; its own local view (``tokenrate.snapshot()``) is the reference:
what the backends hold must equal what the process counted. Every PromQL expression of the Grafana dashboard
in ``collector-config/`` is run against Prometheus and must return data, so the dashboard can't silently break.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import e2e_backends as backends
import pytest
from e2e_backends import poll

T = TypeVar("T")
DASHBOARD = backends.REPO / "collector-config" / "grafana" / "dashboards" / "tokenrate.json"

# What the OTel → Prometheus translation makes of tokenrate's instruments (units: "{token}" adds nothing,
# "s" adds _seconds, "USD" adds _USD, "1" on a gauge adds _ratio; counters get _total). The same list is in
# collector-config/README.md.
EXPECTED_METRICS = {
    "gen_ai_client_operation_duration_seconds_bucket",
    "gen_ai_client_operation_duration_seconds_count",
    "gen_ai_client_operation_duration_seconds_sum",
    "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
    "gen_ai_client_operation_time_to_first_chunk_seconds_count",
    "gen_ai_client_operation_time_to_first_chunk_seconds_sum",
    "gen_ai_client_token_usage_bucket",
    "gen_ai_client_token_usage_count",
    "gen_ai_client_token_usage_sum",
    "tokenrate_budget_utilization_ratio",
    "tokenrate_call_retries_bucket",
    "tokenrate_call_retries_count",
    "tokenrate_call_retries_sum",
    "tokenrate_ratelimit_limit",
    "tokenrate_ratelimit_remaining",
    "tokenrate_ratelimit_reset_seconds",
    "tokenrate_requests_total",
    "tokenrate_retries_total",
    "tokenrate_retry_wait_seconds_bucket",
    "tokenrate_retry_wait_seconds_count",
    "tokenrate_retry_wait_seconds_sum",
    "tokenrate_throttle_events_total",
    "tokenrate_throttle_wait_seconds_bucket",
    "tokenrate_throttle_wait_seconds_count",
    "tokenrate_throttle_wait_seconds_sum",
    "tokenrate_usage_cost_USD_total",
    "tokenrate_usage_tokens_total",
}
# Only with provider-side tools (e.g. Anthropic web search), which the workload doesn't use.
OPTIONAL_METRICS = {"tokenrate_usage_server_tool_requests_total"}


def _by(stack: backends.Stack, promql: str, label: str) -> dict[str, float]:
    return {row["metric"].get(label, ""): float(row["value"][1]) for row in stack.query(promql)}


def _scalar(stack: backends.Stack, promql: str) -> float | None:
    rows = stack.query(promql)
    return float(rows[0]["value"][1]) if rows else None


def _eventually(what: str, fn: Callable[[], T], expected: T, timeout: float = 30) -> T:
    """``fn()`` once it equals ``expected`` (floats: to 1e-9), else its last value after ``timeout``, for the
    caller's assert: data lands in Prometheus a moment after the export, and not all series at once."""
    last: list[T] = []

    def check() -> bool:
        last[:] = [fn()]
        return last[0] == pytest.approx(expected, rel=1e-9)

    with contextlib.suppress(AssertionError):
        poll(what, check, timeout=timeout)
    return last[0] if last else fn()


# -- metrics ------------------------------------------------------------------------------------------------------


def test_metric_names_are_the_documented_prometheus_names(stack, workload):
    selector = f'{{service_name="{workload.service}"}}'
    names = poll(
        "every expected metric name",
        lambda: (found := set(stack.metric_names_matching(selector))) >= EXPECTED_METRICS and found,
    )
    recorded = {n for n in names if ":" in n or n.startswith("ALERTS")}  # collector-config's rules, evaluated
    assert names - recorded - EXPECTED_METRICS <= OPTIONAL_METRICS, sorted(names - recorded - EXPECTED_METRICS)
    labels = {
        key
        for series in stack.series(f'tokenrate_usage_tokens_total{{service_name="{workload.service}"}}')
        for key in series
    }
    assert {"gen_ai_token_type", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_operation_name"} <= labels


def test_tokens_by_type_equal_the_local_view(stack, workload):
    snap = workload.snapshot
    expected = {kind: float(snap["tokens"][kind]) for kind in snap["reported_token_types"]}
    assert set(expected) == {"input", "output", "cache_read", "cache_write", "reasoning", "tool_use"}
    assert all(value > 0 for value in expected.values()), expected
    query = f'sum by (gen_ai_token_type) (tokenrate_usage_tokens_total{{service_name="{workload.service}"}})'
    assert _eventually("tokens by type", lambda: _by(stack, query, "gen_ai_token_type"), expected) == expected


def test_requests_throttling_and_retries_equal_the_local_view_and_the_simulator(stack, workload):
    snap, service = workload.snapshot, workload.service
    served = workload.summary["served_by_status"]
    sel = f'{{service_name="{service}"}}'
    requests = snap["requests"]
    assert _eventually("requests", lambda: _scalar(stack, f"sum(tokenrate_requests_total{sel})"), requests) == requests
    # One duration sample per call, and the calls that failed carry error.type.
    count = f"sum(gen_ai_client_operation_duration_seconds_count{sel})"
    assert _eventually("durations", lambda: _scalar(stack, count), requests) == requests
    errors = _by(stack, f"sum by (error_type) (tokenrate_requests_total{sel})", "error_type")
    assert {k: v for k, v in errors.items() if k} == {k: float(v) for k, v in snap["errors_by_type"].items()}

    # Every 429 and 529 the simulator sent was a throttle event (all were retried: tokenrate_retried="true").
    throttled = served.get("429", 0) + served.get("529", 0)
    assert throttled > 0
    assert snap["throttle"]["events"] == throttled
    events = f"sum(tokenrate_throttle_events_total{sel})"
    assert _eventually("throttle events", lambda: _scalar(stack, events), throttled) == throttled
    assert _by(stack, f"sum by (tokenrate_retried) (tokenrate_throttle_events_total{sel})", "tokenrate_retried") == {
        "true": float(throttled)
    }
    assert _scalar(stack, f"sum(tokenrate_throttle_wait_seconds_count{sel})") == throttled
    wait = _scalar(stack, f"sum(tokenrate_throttle_wait_seconds_sum{sel})")
    assert wait == pytest.approx(snap["throttle"]["wait_s"], rel=1e-9)

    retries = _by(stack, f"sum by (tokenrate_retry_reason) (tokenrate_retries_total{sel})", "tokenrate_retry_reason")
    assert retries == {k: float(v) for k, v in snap["throttle"]["retries_by_reason"].items()}
    assert retries["throttled"] == throttled


def test_cost_budget_and_rate_limit_gauges(stack, workload):
    snap, sel = workload.snapshot, f'{{service_name="{workload.service}"}}'
    assert snap["cost_usd"] > 0
    cost = _eventually("cost", lambda: _scalar(stack, f"sum(tokenrate_usage_cost_USD_total{sel})"), snap["cost_usd"])
    assert cost == pytest.approx(snap["cost_usd"], rel=1e-9)
    # TOKENRATE_BUDGET_DAILY_USD=1: utilization is the day's spend in dollars.
    budget = stack.query(f"tokenrate_budget_utilization_ratio{sel}")
    assert [(row["metric"]["tokenrate_budget_period"], row["metric"]["tokenrate_budget_unit"]) for row in budget] == [
        ("day", "USD")
    ]
    assert float(budget[0]["value"][1]) == pytest.approx(snap["cost_usd"], rel=1e-6)

    # The rate-limit gauges hold every window the local view saw in the headers (openai: requests, tokens;
    # anthropic: requests, tokens, input_tokens, output_tokens; Gemini sends none).
    windows = {(w["provider"], w["kind"]): w for w in snap["rate_limits"]}
    assert {provider for provider, _ in windows} == {"openai", "anthropic"}
    limits = {
        (row["metric"]["gen_ai_provider_name"], row["metric"]["tokenrate_ratelimit_kind"]): float(row["value"][1])
        for row in stack.query(f"tokenrate_ratelimit_limit{sel}")
    }
    assert limits == {key: w["limit"] for key, w in windows.items()}
    remaining = stack.query(f"tokenrate_ratelimit_remaining{sel}")
    assert {(r["metric"]["gen_ai_provider_name"], r["metric"]["tokenrate_ratelimit_kind"]) for r in remaining} == set(
        windows
    )
    assert all(
        0
        <= float(r["value"][1])
        <= limits[(r["metric"]["gen_ai_provider_name"], r["metric"]["tokenrate_ratelimit_kind"])]
        for r in remaining
    )


# -- the Grafana dashboard --------------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


def _expand(expr: str, attribute: str = "user_id") -> str:
    """The dashboard's variables as "All" selects them (allValue ``.*``); ``$attribute`` as chosen."""
    expr = expr.replace("$attribute", attribute)
    for name in ("service", "provider", "model"):
        expr = expr.replace(f"${name}", ".*").replace(f"${{{name}}}", ".*")
    assert "$" not in expr, f"unexpanded variable in {expr!r}"
    return expr


def _finite(rows: list[dict[str, Any]]) -> list[float]:
    values = [float(v) for row in rows for _, v in row.get("values", [row.get("value", (0, "NaN"))])]
    return [v for v in values if math.isfinite(v)]


def test_dashboard_is_well_formed():
    dashboard = _dashboard()
    titles = [p["title"] for p in _panels(dashboard) if p["type"] != "row"]
    assert len(titles) == len(set(titles)), "duplicate panel titles"
    assert all(p.get("targets") for p in _panels(dashboard) if p["type"] != "row")
    assert {v["name"] for v in dashboard["templating"]["list"]} == {
        "datasource",
        "service",
        "provider",
        "model",
        "attribute",
    }


def test_readme_lists_exactly_these_names():
    """collector-config/README.md's metric table names the series this test module expects (docs can't drift)."""
    readme = (backends.REPO / "collector-config" / "README.md").read_text()
    table = readme.split("## Metric names in Prometheus", 1)[1].split("\n## ", 1)[0]
    names = set()
    for cell in re.findall(r"\| `((?:tokenrate|gen_ai)_[A-Za-z_]+(?:/_[a-z]+)*)` \|", table):
        base, *suffixes = cell.split("/")
        if suffixes:  # gen_ai_x_bucket/_sum/_count
            stem = base.rsplit("_", 1)[0]
            names.update([base, *(stem + suffix for suffix in suffixes)])
        else:
            names.add(base)
    assert names == EXPECTED_METRICS | OPTIONAL_METRICS


def test_every_dashboard_query_returns_data(stack, workload):
    """Each target, as Grafana asks it (a range query over the last minutes), gives finite values; and each panel
    shows something other than zero (a name or label typo would give nothing at all)."""
    panels = [p for p in _panels(_dashboard()) if p["type"] != "row"]
    problems = []
    for panel in panels:
        panel_values: list[float] = []
        for target in panel["targets"]:
            expr = _expand(target["expr"])
            rows = poll(f"data for {panel['title']!r}: {expr}", lambda e=expr: _finite(stack.query_range(e, 180)))
            panel_values.extend(rows)
        if not any(value != 0 for value in panel_values):
            problems.append(f"{panel['title']!r}: only zeros")
    assert not problems, problems


def test_top_users_and_features_panels_follow_the_allow_listed_attributes(stack, workload):
    """The "who spent it" panels, for each choice of their variable, show the workload's users and features with
    the cost and tokens the process's own view counted per value."""
    panels = {p["title"]: p for p in _panels(_dashboard()) if p["title"].startswith("Top users / features")}
    assert len(panels) == 2
    cost_expr = panels["Top users / features by cost ($/hour)"]["targets"][0]["expr"]
    for attribute, key in (("user_id", "user.id"), ("tokenrate_feature", "tokenrate.feature")):
        rows = poll(f"top {attribute}", lambda a=attribute: stack.query_range(_expand(cost_expr, a), 180))
        shown = {row["metric"].get(attribute) for row in rows}
        expected = {group["value"] for group in workload.snapshot["groups"] if group["key"] == key}
        assert shown == expected, (attribute, shown, expected)
        # Cost per value over the whole run equals what the process counted for that value.
        total_cost = _by(
            stack,
            f'sum by ({attribute}) (tokenrate_usage_cost_USD_total{{service_name="{workload.service}"}})',
            attribute,
        )
        local = {g["value"]: g["cost_usd"] for g in workload.snapshot["groups"] if g["key"] == key}
        assert total_cost == pytest.approx(local, rel=1e-9)


def test_dashboard_variables_list_this_service(stack, workload):
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        selector, label = _expand(match.group(1)), match.group(2)
        values = poll(f"values of ${variable['name']}", lambda s=selector, lb=label: stack.label_values(lb, s))
        if variable["name"] == "service":
            assert workload.service in values
        elif variable["name"] == "provider":
            assert {"openai", "anthropic", "gcp.gemini"} <= set(values), values
        else:
            assert {"gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"} <= set(values), values


# -- traces ---------------------------------------------------------------------------------------------------------


def test_one_span_per_call_with_retry_events(stack, workload):
    if stack.phoenix_url is None:
        pytest.skip("no trace backend installed (TOKENRATE_E2E_TRACES=0 at install): spans not checked")
    snap = workload.snapshot
    spans = poll(
        f"{snap['requests']} spans in Phoenix",
        lambda: len(found := stack.spans(workload.service)) >= snap["requests"] and found,
    )
    assert len(spans) == snap["requests"]
    by_provider = Counter(span["attributes"]["gen_ai.provider.name"] for span in spans)
    assert by_provider == {row["provider"]: row["requests"] for row in snap["models"]}
    assert all(span["parent_id"] is None for span in spans)  # each call is its own CLIENT span

    events = [event for span in spans for event in span["events"] if event["name"] == "tokenrate.retry"]
    assert len(events) == snap["throttle"]["retries"]
    reasons = Counter(event["attributes"]["tokenrate.retry.reason"] for event in events)
    assert reasons == snap["throttle"]["retries_by_reason"]
    for span in spans:
        attempts = [
            e["attributes"]["tokenrate.retry.attempt"] for e in span["events"] if e["name"] == "tokenrate.retry"
        ]
        assert attempts == list(range(1, len(attempts) + 1)), span
        assert span["attributes"].get("http.request.resend_count", 0) == len(attempts)
    throttled = [e for e in events if e["attributes"]["tokenrate.retry.reason"] == "throttled"]
    assert {e["attributes"]["http.response.status_code"] for e in throttled} == {429, 529}
    assert sum(span["attributes"].get("tokenrate.throttle.events", 0) for span in spans) == snap["throttle"]["events"]
    assert sum(span["attributes"].get("gen_ai.usage.input_tokens", 0) for span in spans) == snap["tokens"]["input"]
    failed = [span for span in spans if span["status_code"] == "ERROR"]
    assert Counter(span["attributes"]["error.type"] for span in failed) == snap["errors_by_type"]


# -- the demo, as the README tells users to run it -----------------------------------------------------------------


def test_tokenrate_demo_exports_to_the_collector(stack, tmp_path):
    service = f"tokenrate-demo-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_http_endpoint,
        "OTEL_SERVICE_NAME": service,
        "TOKENRATE_LEDGER": "off",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tokenrate", "demo", "--duration", "6", "--plain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"exporting OTLP to {stack.otlp_http_endpoint}" in result.stdout
    match = re.search(r"requests\s+([\d,]+) \(", result.stdout)
    assert match, result.stdout
    requests = float(match.group(1).replace(",", ""))
    query = f'sum by (gen_ai_provider_name) (tokenrate_requests_total{{service_name="{service}"}})'
    by_provider = poll(
        "the demo's requests",
        lambda: (r := _by(stack, query, "gen_ai_provider_name")) and sum(r.values()) == requests and r,
    )
    assert set(by_provider) == {"openai", "anthropic", "gcp.gemini", "aws.bedrock", "groq"}


def test_zero_code_example_exports_to_the_collector(stack):
    """``examples/zero_code.sh``: an unmodified app under opentelemetry-instrument, exporting OTLP/HTTP."""
    service = f"tokenrate-zero-code-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_http_endpoint,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_SERVICE_NAME": service,
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={service}",
        "TOKENRATE_LEDGER": "off",
    }
    script = backends.REPO / "examples" / "zero_code.sh"
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requests     2 (2 attempts)" in result.stderr
    query = f'sum by (gen_ai_provider_name) (tokenrate_requests_total{{service_name="{service}"}})'
    expected = {"openai": 1.0, "anthropic": 1.0}
    assert _eventually("the app's two calls", lambda: _by(stack, query, "gen_ai_provider_name"), expected) == expected
    if stack.phoenix_url is not None:
        spans = poll("two spans", lambda: len(found := stack.spans(service)) >= 2 and found)
        assert sorted(span["name"] for span in spans) == ["chat claude-haiku-4-5", "chat gpt-4o-mini"]
