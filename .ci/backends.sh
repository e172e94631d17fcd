#!/usr/bin/env bash
# Real OTLP backends for tests/e2e, without Docker: installed into a project-local, git-ignored directory.
#
#   .ci/backends.sh install   # fetch + unpack everything (needs the Debian archive and PyPI); idempotent
#   .ci/backends.sh check     # print what is installed (exit 1 when something is missing)
#   .ci/backends.sh dir       # print the install directory (what TOKENRATE_E2E_BACKENDS should be)
#
# What gets installed (nothing lands system-wide; the system's apt configuration is not touched):
#   prometheus        Debian bookworm's Prometheus 2.42 (.deb extracted): the PromQL engine the dashboard is checked on;
#                     its promtool checks the config and unit-tests the alerting rules (collector-config/prometheus)
#   amtool            from Debian bookworm's Alertmanager package (.deb extracted): checks alertmanager.yml
#   vmagent           Debian trixie's VictoriaMetrics 1.112 package (.deb extracted; bookworm's 1.79 has no OTLP):
#                     receives OTLP/HTTP metrics, renames them the Prometheus way, remote-writes to Prometheus
#   rotel-agent       a Rust OTLP collector (binary inside the `rotel` wheel on PyPI): receives OTLP gRPC + HTTP
#                     like the OpenTelemetry Collector would, forwards metrics to vmagent and traces to Phoenix
#   phoenix           Arize Phoenix (PyPI), an OTLP trace backend with a REST API, in its own venv (~850 MB).
#                     Skipped with TOKENRATE_E2E_TRACES=0 (the trace test then skips, saying why).
#   redis-server      Debian bookworm's Redis 7.0 (redis-tools, libjemalloc2 and liblzf1 extracted, no system-wide
#                     install; bin/redis-server sets LD_LIBRARY_PATH): the store of shared budgets
#
#   .ci/backends.sh redis     # only Redis, kept when it already runs (e.g. into an existing shared directory)
#
# The tests start and stop the servers themselves (free ports on 127.0.0.1); see tests/e2e/backends.py.
# Environment: TOKENRATE_E2E_BACKENDS (install directory, default <repo>/.e2e-backends), PYTHON (default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${TOKENRATE_E2E_BACKENDS:-$ROOT/.e2e-backends}
PYTHON=${PYTHON:-python3}
WITH_TRACES=${TOKENRATE_E2E_TRACES:-1}
ROTEL_VERSION=0.0.1a15
PHOENIX_VERSION=20.26.1
# Debian packages: suite/package. Versions are whatever the suite serves (stable suites: point releases only).
PROMETHEUS_DEB=prometheus/bookworm
ALERTMANAGER_DEB=prometheus-alertmanager/bookworm
VICTORIA_DEB=victoria-metrics/trixie
REDIS_DEBS=(redis-tools/bookworm libjemalloc2/bookworm liblzf1/bookworm)

log() { echo "[backends] $*" >&2; }
# pip warns about every configured but absent local index on some machines: keep the log readable.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

debian_archive_url() {
  # The machine's own Debian mirror, read from its apt sources (never written into the repository).
  local url=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    url=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$url" ] && [ -f /etc/apt/sources.list ]; then
    url=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  [ -n "$url" ] || { log "no Debian archive URL in the apt sources"; return 1; }
  echo "${url%/}"
}

APT_OPTS=()

private_apt() {
  # A private apt configuration: its own source list, lists and cache under $DIR.
  local apt="$DIR/apt" url
  url=$(debian_archive_url)
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$DIR/bin"
  cat >"$apt/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $url bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $url trixie main
EOF
  APT_OPTS=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
  log "apt: private lists for bookworm + trixie"
  apt-get "${APT_OPTS[@]}" update -qq
}

install_debs() {
  # Only what is missing (a shared install dir may be in use by running tests: nothing is removed under them).
  local wanted=() deb pkg
  { [ -x "$DIR/root/usr/bin/prometheus" ] && [ -x "$DIR/root/usr/bin/promtool" ]; } || wanted+=("$PROMETHEUS_DEB")
  [ -x "$DIR/root/usr/bin/amtool" ] || wanted+=("$ALERTMANAGER_DEB")
  [ -x "$DIR/root/usr/bin/vmagent" ] || wanted+=("$VICTORIA_DEB")
  mkdir -p "$DIR/bin" "$DIR/root"
  if [ ${#wanted[@]} -gt 0 ]; then
    private_apt
    log "apt: fetching ${wanted[*]}"
    rm -rf "$DIR/debs" && mkdir -p "$DIR/debs"
    (cd "$DIR/debs" && apt-get "${APT_OPTS[@]}" download -qq "${wanted[@]}")
    touch "$DIR/VERSIONS"
    for deb in "$DIR"/debs/*.deb; do
      pkg=$(dpkg-deb -f "$deb" Package)
      { grep -v "^Package: $pkg Version:" "$DIR/VERSIONS" || true; dpkg-deb -f "$deb" Package Version | paste -sd' '; } \
        >"$DIR/VERSIONS.new"
      mv "$DIR/VERSIONS.new" "$DIR/VERSIONS"
      # Prometheus whole (binary, promtool, web assets); from Alertmanager's package only amtool, from
      # VictoriaMetrics' only vmagent.
      case "$pkg" in
        prometheus) dpkg-deb -x "$deb" "$DIR/root" ;;
        prometheus-alertmanager) dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$DIR/root" ./usr/bin/amtool ;;
        victoria-metrics) dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$DIR/root" ./usr/bin/vmagent ;;
      esac
    done
    rm -rf "$DIR/debs" "$DIR/apt/cache"
  else
    log "prometheus, promtool, amtool and vmagent already installed"
  fi
  for b in prometheus promtool amtool vmagent; do ln -sf "$DIR/root/usr/bin/$b" "$DIR/bin/$b"; done
}

redis_works() { [ -x "$DIR/bin/redis-server" ] && "$DIR/bin/redis-server" --version >/dev/null 2>&1; }

install_redis() {
  if redis_works; then
    log "redis-server already installed: $("$DIR/bin/redis-server" --version | cut -d' ' -f1-3)"
    return
  fi
  [ ${#APT_OPTS[@]} -gt 0 ] || private_apt
  local debs="$DIR/redis-debs" root="$DIR/redis-root" deb
  rm -rf "$debs" "$root" && mkdir -p "$debs" "$root" "$DIR/bin"
  (cd "$debs" && apt-get "${APT_OPTS[@]}" download -qq "${REDIS_DEBS[@]}")
  for deb in "$debs"/*.deb; do
    dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$DIR/VERSIONS"
    dpkg-deb -x "$deb" "$root"
  done
  # redis-tools ships the server as redis-check-rdb (Debian's redis-server is a link to it: it acts on its name).
  printf '#!/usr/bin/env bash\nexport LD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"\nexec -a redis-server "%s" "$@"\n' \
    "$root/usr/lib/x86_64-linux-gnu" "$root/usr/bin/redis-check-rdb" >"$DIR/bin/redis-server"
  chmod 0755 "$DIR/bin/redis-server"
  rm -rf "$debs" "$DIR/apt/cache"
  redis_works || { log "redis-server does not start"; return 1; }
}

install_rotel() {
  # The wheel is per CPython tag; only its binary is used, so fetch the cp311 one whatever the local Python.
  local whl="$DIR/whl" pip=("$PYTHON" -m pip)
  if ! "${pip[@]}" --version >/dev/null 2>&1; then  # a Python without pip: borrow a venv's
    "$PYTHON" -m venv "$DIR/venv-pip"
    pip=("$DIR/venv-pip/bin/python" -m pip)
  fi
  rm -rf "$whl" && mkdir -p "$whl"
  log "pip: rotel $ROTEL_VERSION (binary only)"
  quiet_pip "${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_34_x86_64 "rotel==$ROTEL_VERSION" -d "$whl"
  (cd "$whl" && "$PYTHON" -m zipfile -e rotel-*.whl unpacked)
  install -m 0755 "$whl/unpacked/rotel/rotel-agent" "$DIR/bin/rotel-agent"
  rm -rf "$whl"
}

install_phoenix() {
  if [ "$WITH_TRACES" = 0 ]; then
    log "TOKENRATE_E2E_TRACES=0: no trace backend"
    return
  fi
  local venv="$DIR/venv-phoenix"
  if [ -x "$venv/bin/phoenix" ] && "$venv/bin/python" -c "import phoenix" 2>/dev/null \
    && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("arize-phoenix"))')" = "$PHOENIX_VERSION" ]; then
    log "phoenix $PHOENIX_VERSION already installed"
    return
  fi
  log "pip: arize-phoenix $PHOENIX_VERSION (own venv)"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  quiet_pip "$venv/bin/python" -m pip install -q --disable-pip-version-check "arize-phoenix==$PHOENIX_VERSION"
  ln -sf "$venv/bin/phoenix" "$DIR/bin/phoenix"
}

check() {
  local ok=0 b
  for b in prometheus promtool amtool vmagent rotel-agent redis-server; do
    [ -x "$DIR/bin/$b" ] || { echo "$b: MISSING"; ok=1; }
  done
  [ -f "$DIR/VERSIONS" ] && cat "$DIR/VERSIONS"
  [ -x "$DIR/bin/rotel-agent" ] && "$DIR/bin/rotel-agent" --version
  redis_works && "$DIR/bin/redis-server" --version
  if [ -x "$DIR/bin/phoenix" ]; then
    echo "arize-phoenix $("$DIR/venv-phoenix/bin/python" -c 'import importlib.metadata as m; print(m.version("arize-phoenix"))')"
  else
    echo "arize-phoenix: not installed (the trace test skips)"
  fi
  return $ok
}

case "${1:-}" in
  install)
    start=$SECONDS
    mkdir -p "$DIR"
    install_debs
    install_redis
    install_rotel
    install_phoenix
    check
    log "installed into $DIR in $((SECONDS - start)) s"
    ;;
  redis)
    mkdir -p "$DIR"
    install_redis
    ;;
  check) check ;;
  dir) echo "$DIR" ;;
  *) echo "usage: $0 install|redis|check|dir" >&2; exit 2 ;;
esac
