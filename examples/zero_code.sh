#!/usr/bin/env bash
# Zero-code: an unmodified app (zero_code_app.py) under `opentelemetry-instrument`. tokenrate's instrumentors are
# OTel entry points (tokenrate_openai, tokenrate_anthropic, tokenrate_google_genai), so installing tokenrate
# (with its `sdk` extra: opentelemetry-sdk, -distro and the OTLP gRPC and HTTP exporters) is all it takes.
#
#   examples/zero_code.sh                       # console exporters, against the local simulated provider
#   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_TRACES_EXPORTER=otlp OTEL_METRICS_EXPORTER=otlp \
#     examples/zero_code.sh                     # to a collector (collector-config/docker-compose.yaml)
#
# PYTHON picks the interpreter (default: python3); opentelemetry-instrument is taken from its bin directory.
# With a real provider, skip the simulator part and run the last command with your own app and API keys.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
bindir=$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")

# 1. The local SIMULATED provider (no model is called). Port 0: any free port; its banner prints the
#    `export OPENAI_BASE_URL=...` lines we need.
banner=$(mktemp)
"$PYTHON" -m tokenrate.simulator --port 0 >"$banner" &
sim=$!
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; rm -f "$banner"' EXIT
for _ in $(seq 100); do grep -q "export ANTHROPIC_BASE_URL" "$banner" && break; sleep 0.1; done
eval "$(grep '^ *export ' "$banner")"

# 2. The app, unmodified, instrumented from the outside. TOKENRATE_SUMMARY=1 prints tokenrate's session summary
#    (stderr) when the program ends; the OTEL_* variables choose the exporters.
export OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME:-zero-code-example}
export OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:-console}
export OTEL_METRICS_EXPORTER=${OTEL_METRICS_EXPORTER:-console}
export OTEL_LOGS_EXPORTER=${OTEL_LOGS_EXPORTER:-none}
# opentelemetry-distro defaults OTLP to gRPC (:4317); the endpoint above is the collector's OTLP/HTTP port (:4318).
export OTEL_EXPORTER_OTLP_PROTOCOL=${OTEL_EXPORTER_OTLP_PROTOCOL:-http/protobuf}
export TOKENRATE_SUMMARY=${TOKENRATE_SUMMARY:-1}
"$bindir/opentelemetry-instrument" "$PYTHON" "$here/zero_code_app.py"
