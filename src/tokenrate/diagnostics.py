"""What tokenrate sees in this environment: SDK versions and support, hook points, exporters, conflicts.

``tokenrate diagnostics`` prints it; ``tokenrate.diagnostics.collect()`` returns it as a dict (JSON-able), and
called inside an instrumented process it also tells which instrumentors are active and the session so far.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import sys
from typing import Any, TextIO

from tokenrate import __version__
from tokenrate.otel_config import check_exporters
from tokenrate.sdks import SDKS, SupportedSDK

OTEL_SETTINGS = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
)

# Other instrumentations that record the same LLM calls: running both double-counts tokens and cost. Those of
# one SDK are listed with it (`tokenrate.sdks`); these record every SDK they know.
_OTHER_GENAI_ENTRY_POINTS = {name for sdk in SDKS for name in sdk.other_entry_points}
_OTHER_GENAI_DISTRIBUTIONS = (
    *(name for sdk in SDKS for name in sdk.other_instrumentations),
    "traceloop-sdk",
    "openlit",
    "logfire",
    "langfuse",
)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _sdk_report(sdk: SupportedSDK, disabled: set[str]) -> dict[str, Any]:
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    from tokenrate.pipeline import Pipeline

    installed = _version(sdk.name)
    entry_point = sdk.entry_point
    report: dict[str, Any] = {"sdk": sdk.name, "installed": installed, "entry_point": entry_point}
    try:
        instrumentor = sdk.instrumentor_class()()
    except ImportError as exc:
        report.update(supported=None, error=f"tokenrate's instrumentor cannot be imported: {exc}")
        return report
    report["supported_range"] = ", ".join(instrumentor.instruments)
    conflict = get_dependency_conflicts(list(instrumentor.instruments)) if installed else None
    report["supported"] = bool(installed) and conflict is None
    report["disabled_by_env"] = entry_point in disabled or "*" in disabled
    report["would_activate"] = report["supported"] and not report["disabled_by_env"]
    report["active_in_this_process"] = bool(instrumentor.is_instrumented_by_opentelemetry and instrumentor.active)
    if installed:
        hooks = instrumentor.hooks(Pipeline(None))
        report["hooks"] = {hook.target: hook.check() or "ok" for hook in hooks}
    return report


def _registered_entry_points() -> dict[str, str]:
    found = {}
    for entry_point in metadata.entry_points(group="opentelemetry_instrumentor"):
        found[entry_point.name] = entry_point.value
    return found


def _tokenrate_settings() -> dict[str, str]:
    """Every ``TOKENRATE_*`` variable as set; the budget store's URL without its password."""
    from tokenrate.budget.stores import redact_url

    return {
        name: redact_url(value) if name == "TOKENRATE_BUDGET_STORE" else value
        for name, value in sorted(os.environ.items())
        if name.startswith("TOKENRATE_")
    }


def collect() -> dict[str, Any]:
    """Everything ``tokenrate diagnostics`` shows, as plain data."""
    disabled = {
        name.strip() for name in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if name.strip()
    }
    entry_points = _registered_entry_points()
    sdks = [_sdk_report(sdk, disabled) for sdk in SDKS]
    for sdk in sdks:
        sdk["entry_point_registered"] = sdk["entry_point"] in entry_points
    others = sorted(
        {f"entry point {name!r} ({value})" for name, value in entry_points.items() if name in _OTHER_GENAI_ENTRY_POINTS}
        | {f"{dist} {_version(dist)}" for dist in _OTHER_GENAI_DISTRIBUTIONS if _version(dist)}
    )
    report: dict[str, Any] = {
        "tokenrate": __version__,
        "python": platform.python_version(),
        "sdks": sdks,
        "opentelemetry": {
            "api": _version("opentelemetry-api"),
            "sdk": _version("opentelemetry-sdk"),
            "instrumentation": _version("opentelemetry-instrumentation"),
            "distro": _version("opentelemetry-distro"),
            "otlp_http_exporter": _version("opentelemetry-exporter-otlp-proto-http"),
            "otlp_grpc_exporter": _version("opentelemetry-exporter-otlp-proto-grpc"),
            "prometheus_exporter": _version("opentelemetry-exporter-prometheus"),
            "settings": {name: os.environ[name] for name in OTEL_SETTINGS if name in os.environ},
            "exporters": [check.as_dict() for check in check_exporters()],
        },
        "other_genai_instrumentations": others,
        "tokenrate_settings": _tokenrate_settings(),
        "genai_prices": _version("genai-prices"),
    }
    from tokenrate.budget import get_budget
    from tokenrate.budget.process import describe_store

    budget = get_budget()
    if budget is not None:
        report["budgets"] = {"count": len(budget.specs), "shared": describe_store(budget.store)}
    if any(sdk.get("active_in_this_process") for sdk in sdks):
        try:
            from tokenrate.view import format_status, snapshot

            report["session"] = format_status(snapshot())
        except Exception as exc:  # the view is optional for diagnostics
            report["session"] = f"unavailable ({exc})"
    return report


def exporter_problems(report: dict[str, Any]) -> list[str]:
    """The configured-but-not-installed exporters (or invalid protocols) in a `collect` report."""
    return [c["problem"] for c in report["opentelemetry"].get("exporters", []) if c["problem"]]


def render(report: dict[str, Any], file: TextIO = sys.stdout) -> None:
    """Human-readable diagnostics."""

    def line(text: str = "") -> None:
        print(text, file=file)

    line(f"tokenrate {report['tokenrate']} on Python {report['python']}")
    line()
    line("SDKs")
    for sdk in report["sdks"]:
        installed = sdk["installed"] or "not installed"
        if sdk.get("error"):
            line(f"  {sdk['sdk']:<13} {installed:<16} {sdk['error']}")
            continue
        support = "supported" if sdk["supported"] else ("unsupported" if sdk["installed"] else "-")
        state = []
        if sdk["disabled_by_env"]:
            state.append("disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
        elif sdk["would_activate"]:
            state.append("would activate under opentelemetry-instrument / tokenrate run")
        if sdk["active_in_this_process"]:
            state.append("ACTIVE in this process")
        if not sdk["entry_point_registered"]:
            state.append("entry point NOT registered (reinstall tokenrate)")
        line(
            f"  {sdk['sdk']:<13} {installed:<10} {support:<12} (tokenrate supports {sdk['supported_range']}; "
            f"entry point {sdk['entry_point']})"
        )
        for text in state:
            line(f"      {text}")
        bad = {target: status for target, status in sdk.get("hooks", {}).items() if status != "ok"}
        if sdk.get("hooks"):
            if bad:
                for target, status in bad.items():
                    line(f"      hook {target}: {status}")
            else:
                line(f"      all {len(sdk['hooks'])} hook points present")
    line()
    otel = report["opentelemetry"]
    line("OpenTelemetry")
    for key in ("api", "sdk", "instrumentation", "distro", "otlp_http_exporter", "otlp_grpc_exporter"):
        line(f"  {key:<20} {otel[key] or 'not installed'}")
    if not otel["sdk"]:
        line("  (no OTel SDK: telemetry is a no-op; the local view, summary and CLI still work)")
    settings = otel["settings"]
    if settings:
        for name, value in settings.items():
            line(f"  {name}={value}")
    else:
        default = (
            "opentelemetry-instrument exports OTLP/gRPC to localhost:4317 (opentelemetry-distro's defaults)"
            if otel["distro"]
            else "without opentelemetry-distro, opentelemetry-instrument sets up no exporter"
        )
        line(f"  no OTEL_* settings in the environment: {default}")
    exporters = otel.get("exporters", [])
    if exporters:
        line("  exporters under opentelemetry-instrument (tokenrate run sets them to none without an endpoint):")
    for check in exporters:
        state = "installed" if check["problem"] is None else "PROBLEM"
        line(f"    {check['signal']:<8} {check['entry_point'] or '?':<16} {state:<10} {check['setting']}")
        if check["problem"]:
            line(f"      {check['problem']}")
    line()
    others = report["other_genai_instrumentations"]
    line("Other GenAI instrumentations" + (" (double-counting risk: disable one side)" if others else ""))
    for other in others or ["none found"]:
        line(f"  {other}")
    line()
    line(f"genai-prices: {report['genai_prices'] or 'not installed (cost only from a TOKENRATE_PRICES file)'}")
    if report["tokenrate_settings"]:
        line("tokenrate settings:")
        for name, value in report["tokenrate_settings"].items():
            line(f"  {name}={value}")
    if "budgets" in report:
        line(f"budgets: {report['budgets']['count']}, shared through {report['budgets']['shared']}")
    if "session" in report:
        line()
        line(f"This session: {report['session']}")
