#!/usr/bin/env bash
# Installs what the client-compatibility tests (broker/tests/compat/) need on a Debian machine:
#   - kcat (Debian package)
#   - curl, setsid (util-linux) and ip (iproute2), used by e2e/local-cluster for the cluster
#     tests (network namespaces for the network-partition test); openssl for the operator's
#     tests
#   - two Python virtualenvs in a cache outside the repo, reused across clones:
#       venv-compat-latest: pytest + kafka-python (latest) + confluent-kafka (latest)
#       venv-compat-kp202:  kafka-python==2.0.2 exactly
#       venv-dashboards:    the Grafana Foundation SDK, pinned in
#                           charts/samsa-operator/dashboards/requirements.txt, for the chart's
#                           dashboard generator (charts/check.sh runs it)
#   - Apache Kafka's jars (kafka_2.13 + kafka-tools, from Maven Central through
#     broker/bench/fetch-kafka.sh) for the tests that run Kafka's own admin tools
# Idempotent: a fast no-op when everything is present. Needs no stdin (CI).
#
#   scripts/test-deps.sh              everything above
#   scripts/test-deps.sh dashboards   only Python and venv-dashboards (`make helm-lint`,
#                                     e2e/operator-test.sh)
#
# Environment:
#   SAMSA_CACHE          cache root (default: $HOME/.cache/samsa)
#   SAMSA_PYTHON         Python used to create the venvs (default: python3)
#   SAMSA_REFRESH_VENVS  set to 1 to rebuild the venvs (e.g. to pick up new "latest" releases)
#
# Prints the venv paths and Kafka's home as shell assignments on stdout, e.g.
#   SAMSA_DASHBOARD_PYTHON=/root/.cache/samsa/venv-dashboards-py3.11/bin/python
#   SAMSA_VENV_LATEST=/root/.cache/samsa/venv-compat-latest-py3.11
#   SAMSA_KAFKA_HOME=/root/.cache/samsa/kafka-4.1.1
set -euo pipefail

ONLY="${1:-}"
case "$ONLY" in
    "" | dashboards) ;;
    *) echo "usage: $0 [dashboards]" >&2; exit 2 ;;
esac
CACHE="${SAMSA_CACHE:-$HOME/.cache/samsa}"
PY="${SAMSA_PYTHON:-python3}"
# Bump when the list of packages below changes: every cached venv is then rebuilt.
STAMP_VERSION=1

log() { printf 'test-deps: %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
            log "need root to apt-get install $*"; return 1; fi
    else
        SUDO=()
    fi
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
        apt_updated=1
    fi
    log "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
    log "installed (apt): $*"
}

# --- kcat -------------------------------------------------------------------------------------
# (not with `dashboards`)
if [ -z "$ONLY" ]; then
    if ! command -v kcat >/dev/null 2>&1; then
        apt_install kcat
    fi
    log "kcat: $(kcat -V 2>&1 | grep -m1 "^Version" | cut -d" " -f1-2) ($(kcat -V 2>&1 | grep -o -m1 "librdkafka [0-9.]*"))"

    # --- e2e/local-cluster's tools --------------------------------------------------------------
    need=()
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v setsid >/dev/null 2>&1 || need+=(util-linux)
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    # The operator's tests make a service-account key for the kube-apiserver they start.
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    if [ "${#need[@]}" -gt 0 ]; then
        apt_install "${need[@]}"
    fi
fi

# --- Python ------------------------------------------------------------------------------------
if ! command -v "$PY" >/dev/null 2>&1; then
    apt_install python3 python3-venv
fi
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
fi
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
mkdir -p "$CACHE"

# make_venv NAME "MODULES" PACKAGES...: (re)creates $CACHE/NAME unless its stamp matches, and
# checks that MODULES import. The stamp is written last, so a failed or interrupted install is
# redone on the next run.
make_venv() {
    local name="$1" modules="$2"; shift 2
    local dir="$CACHE/$name"
    local want="stamp=$STAMP_VERSION python=$PYVER packages=$*"
    if [ "${SAMSA_REFRESH_VENVS:-0}" != "1" ] && [ -f "$dir/.samsa-stamp" ] \
        && [ "$(cat "$dir/.samsa-stamp")" = "$want" ] && "$dir/bin/python" -c '' 2>/dev/null; then
        log "$name: cached ($dir)"
    else
        log "$name: creating $dir with: $*"
        rm -rf "$dir"
        "$PY" -m venv "$dir"
        "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input "$@" </dev/null
        if ! "$dir/bin/python" -c "import $modules"; then
            # kafka-python 2.0.2, for one, does not import on Python >= 3.12.
            log "$name: 'import $modules' fails with Python $PYVER: set SAMSA_PYTHON to an older one"
            return 1
        fi
        printf '%s' "$want" >"$dir/.samsa-stamp"
        log "$name: installed"
    fi
    log "$name: $("$dir/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null \
        | grep -iE '^(pytest|kafka-python|confluent-kafka|grafana-foundation-sdk|grafana_foundation_sdk)==' \
        | tr '\n' ' ')"
}

# The dashboard generator's venv: its one package, at the version the chart pins.
DASH_PIN="$(grep -v '^#' "$(dirname "${BASH_SOURCE[0]}")/../charts/samsa-operator/dashboards/requirements.txt" | grep .)"
VENV_DASH="$CACHE/venv-dashboards-py$PYVER"
make_venv "$(basename "$VENV_DASH")" "grafana_foundation_sdk" "$DASH_PIN"
echo "SAMSA_DASHBOARD_PYTHON=$VENV_DASH/bin/python"
if [ "$ONLY" = dashboards ]; then exit 0; fi

VENV_LATEST="$CACHE/venv-compat-latest-py$PYVER"
VENV_KP202="$CACHE/venv-compat-kp202-py$PYVER"
make_venv "$(basename "$VENV_LATEST")" "pytest, kafka, confluent_kafka, cryptography" \
    pytest kafka-python confluent-kafka cryptography
make_venv "$(basename "$VENV_KP202")" "kafka" kafka-python==2.0.2

echo "SAMSA_VENV_LATEST=$VENV_LATEST"
echo "SAMSA_VENV_KP202=$VENV_KP202"

# --- Java: kafka-clients driver (broker/tests/compat/java) --------------------------------------
# A small Maven project pinned to one kafka-clients release; built into its own target/ (git-
# ignored) with dependencies from Maven Central cached in ~/.m2. Rebuilt only when pom.xml or a
# source file changes: the stamp holds a hash of them, which test_java.py checks too. Logs go to
# stderr, so the venv assignments above stay the only lines on stdout.
JAVA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/broker/tests/compat/java"
if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    apt_install default-jdk-headless
fi
if ! command -v mvn >/dev/null 2>&1; then
    apt_install maven
fi
java_sources_hash() {
    (cd "$JAVA_DIR" && find pom.xml src -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d" " -f1)
}
JAVA_STAMP="$JAVA_DIR/target/.samsa-stamp"
java_want="sources=$(java_sources_hash)"
if [ -f "$JAVA_STAMP" ] && [ "$(cat "$JAVA_STAMP")" = "$java_want" ] \
    && [ -f "$JAVA_DIR/target/samsa-compat-java.jar" ]; then
    log "java driver: cached ($JAVA_DIR/target)"
else
    log "java driver: building with Maven in $JAVA_DIR"
    rm -rf "$JAVA_DIR/target"
    # Debian's Maven 3.8 prints colour resets even in batch mode: stripped.
    (cd "$JAVA_DIR" && nice mvn -B -q package </dev/null 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2)
    printf '%s' "$java_want" >"$JAVA_STAMP"
    log "java driver: built"
fi
log "java driver: $(cd "$JAVA_DIR/target/lib" && ls kafka-clients-*.jar | sed 's/\.jar$//'), $(java -version 2>&1 | head -1)"

# --- Apache Kafka's tools (broker/tests/compat/kafka_tools.py) -----------------------------------
# The jars of one Kafka release, fetched once into the cache (a stamp makes this a no-op later).
KAFKA_HOME="$("$(dirname "${BASH_SOURCE[0]}")/../broker/bench/fetch-kafka.sh" </dev/null | tail -n 1)"
log "kafka tools: $KAFKA_HOME/libs ($(cd "$KAFKA_HOME/libs" && ls kafka-tools-[0-9]*.jar 2>/dev/null | sed 's/\.jar$//'), $(ls "$KAFKA_HOME/libs" | wc -l) jars)"
echo "SAMSA_KAFKA_HOME=$KAFKA_HOME"
