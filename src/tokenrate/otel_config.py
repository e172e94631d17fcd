"""Which exporters the user's ``OTEL_*`` settings ask for, and whether an installed package provides each one.

`opentelemetry-instrument` resolves ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` (``otlp`` through the per-signal or
general ``OTEL_EXPORTER_OTLP_*PROTOCOL``) to entry points of the groups ``opentelemetry_<signal>_exporter``; one
that no package provides makes the whole auto-initialization fail, so nothing is exported. This module does the
same resolution without importing any exporter, for ``tokenrate diagnostics``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

SIGNALS = ("traces", "metrics", "logs")
OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
"""The OTLP exporter entry point for each protocol the OTel SDK accepts (``http/json`` is not implemented)."""
DISTRO_DEFAULTS = {"exporter": "otlp", "protocol": "grpc"}
"""What opentelemetry-distro sets when the user sets nothing."""
PACKAGE_OF = {
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
    "console": "opentelemetry-sdk",
    "prometheus": "opentelemetry-exporter-prometheus",
}
INSTALL_HINT = 'pip install "tokenrate[sdk]" (the OTel SDK with the OTLP gRPC and HTTP exporters)'


@dataclass(frozen=True)
class ExporterCheck:
    """One exporter one signal is configured to use."""

    signal: str
    setting: str
    """Where the choice comes from, e.g. ``OTEL_LOGS_EXPORTER=otlp (opentelemetry-distro's default)``."""
    entry_point: str | None
    """The entry point name it resolves to (``None``: the configuration itself is invalid)."""
    installed: bool
    problem: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _provided(signal: str) -> set[str]:
    return {ep.name for ep in metadata.entry_points(group=f"opentelemetry_{signal}_exporter")}


def _has(group: str) -> bool:
    return any(True for _ in metadata.entry_points(group=group))


def _protocol(signal: str, env: Mapping[str, str], distro: bool) -> tuple[str | None, str]:
    """The OTLP protocol for ``signal`` and the variable it came from."""
    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(name, "").strip()
        if value:
            return value, f"{name}={value}"
    if distro:
        return DISTRO_DEFAULTS["protocol"], f"protocol {DISTRO_DEFAULTS['protocol']} (opentelemetry-distro's default)"
    return "grpc", "protocol grpc (the OTel SDK's default)"


def check_exporters(env: Mapping[str, str] | None = None) -> list[ExporterCheck]:
    """Every exporter the configuration asks for under ``opentelemetry-instrument``, and whether it is installed."""
    env = os.environ if env is None else env
    distro = _has("opentelemetry_distro")
    configurator = _has("opentelemetry_configurator")
    checks = []
    for signal in SIGNALS:
        variable = f"OTEL_{signal.upper()}_EXPORTER"
        configured = env.get(variable, "").strip()
        origin = f"{variable}={configured}"
        if not configured:
            if not distro:
                continue  # no distro, no setting: opentelemetry-instrument exports nothing for this signal
            configured = DISTRO_DEFAULTS["exporter"]
            origin = f"{variable} unset: {configured} (opentelemetry-distro's default)"
        if configured.lower() == "none":
            continue
        provided = _provided(signal)
        for name in (part.strip() for part in configured.split(",") if part.strip()):
            check = _check_one(signal, name, origin, env, distro, provided)
            if check.problem is None and not configurator:
                problem = (
                    f"{origin} is set, but no OTel configurator (opentelemetry-distro) is installed: "
                    f"opentelemetry-instrument sets up no exporter. {INSTALL_HINT}"
                )
                check = ExporterCheck(signal, check.setting, check.entry_point, check.installed, problem)
            checks.append(check)
    return checks


def _check_one(
    signal: str, name: str, origin: str, env: Mapping[str, str], distro: bool, provided: set[str]
) -> ExporterCheck:
    entry_point = name
    setting = origin
    if name == "otlp":
        protocol, protocol_origin = _protocol(signal, env, distro)
        setting = f"{origin}, {protocol_origin}"
        entry_point = OTLP_BY_PROTOCOL.get(protocol or "")
        if entry_point is None:
            accepted = ", ".join(OTLP_BY_PROTOCOL)
            problem = f"OTLP protocol {protocol!r} is not supported by the OTel SDK (use one of: {accepted})"
            return ExporterCheck(signal, setting, None, False, problem)
    if entry_point in provided:
        return ExporterCheck(signal, setting, entry_point, True, None)
    package = PACKAGE_OF.get(entry_point)
    needs = f"pip install {package}" if package else "install the package that provides it"
    problem = (
        f"not installed, so opentelemetry-instrument fails to initialize and exports nothing: {needs}, "
        f"or {INSTALL_HINT}"
    )
    return ExporterCheck(signal, setting, entry_point, False, problem)
