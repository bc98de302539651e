#!/usr/bin/env bash
# Samsa vs Apache Kafka benchmark: `make bench` runs this. Not part of `make test`.
#
#   broker/bench/run.sh            full run (2 GiB log, 60 s latency run; ~12-15 min on 2 idle cores)
#   broker/bench/run.sh --quick    smoke run (200 MiB log, 5 s latency run; ~2-3 min)
#
# Installs what it needs (fio and iperf3 from Debian, Kafka jars from Maven Central, a venv with
# confluent-kafka from PyPI, all cached under ${SAMSA_CACHE:-$HOME/.cache/samsa}), builds the
# release broker, then runs bench.py pinned to the client core. Results: target/bench/
# (results.json, details.json, table.txt, logs/, raw/). See broker/bench/README.md.
#
# Flags of this script: --quick, --kafka-version V (default 4.1.1), --no-build, -h.
# Every other flag goes to bench.py (python3 broker/bench/bench.py --help lists them), e.g.
#   --log-mb 200 --latency-seconds 10 --brokers samsa --skip-limits --drop-caches --keep-data
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${SAMSA_CACHE:-$HOME/.cache/samsa}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KAFKA_VERSION=4.1.1
CONFLUENT_KAFKA=confluent-kafka==2.16.1
BUILD=1
QUICK=()
PASS=()

log() { printf 'bench: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=(--quick --log-mb 200 --latency-seconds 5 --warmup 2 --max-seconds 60
                        --e2e-messages 1000 --idle-settle 2 --disk-probe-mb 64 --iperf-seconds 3) ;;
        --kafka-version) KAFKA_VERSION="$2"; shift ;;
        --kafka-version=*) KAFKA_VERSION="${1#*=}" ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,13p' "$0" | cut -c3-; exit 0 ;;
        *) PASS+=("$1") ;;
    esac
    shift
done

# --- cores: broker on one, clients on another --------------------------------------------------
NCPU="$(nproc)"
if [ "$NCPU" -ge 2 ]; then BROKER_CPU=0; CLIENT_CPU=1; else
    log "warning: 1 core: broker and clients share it"; BROKER_CPU=0; CLIENT_CPU=0; fi

# --- Debian packages ---------------------------------------------------------------------------
apt_updated=0
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { log "need root to apt-get install $*"; return 1; }
        sudo=(sudo -n)
    fi
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
            </dev/null >/dev/null 2>&1; then
        if [ "$apt_updated" -eq 0 ]; then
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null; apt_updated=1
        fi
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
            </dev/null >/dev/null
    fi
    log "installed (apt): $*"
}
command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
command -v taskset >/dev/null 2>&1 || apt_install util-linux
# Optional: without fio the disk limit uses dd oflag=dsync; without iperf3 loopback is skipped.
command -v fio >/dev/null 2>&1 || apt_install fio || log "fio unavailable: dd will measure the disk"
command -v iperf3 >/dev/null 2>&1 || apt_install iperf3 || log "iperf3 unavailable: no loopback limit"

# --- Samsa -------------------------------------------------------------------------------------
if [ "$BUILD" -eq 1 ]; then
    log "cargo build --release -p samsa-broker"
    (cd "$ROOT" && "${CARGO:-cargo}" build --release -p samsa-broker --bin samsa-broker)
fi
SAMSA_BIN="$TARGET_DIR/release/samsa-broker"
[ -x "$SAMSA_BIN" ] || { log "no $SAMSA_BIN (drop --no-build)"; exit 1; }

# --- Apache Kafka ------------------------------------------------------------------------------
KAFKA_HOME="$("$HERE/fetch-kafka.sh" "$KAFKA_VERSION" | tail -n1)"

# --- librdkafka client venv ----------------------------------------------------------------------
PY="${SAMSA_PYTHON:-python3}"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
VENV="$CACHE/venv-bench-py$PYVER"
WANT="stamp=1 python=$PYVER packages=$CONFLUENT_KAFKA"
if [ -f "$VENV/.samsa-stamp" ] && [ "$(cat "$VENV/.samsa-stamp")" = "$WANT" ] \
        && "$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
    log "venv cached: $VENV"
else
    log "creating $VENV with $CONFLUENT_KAFKA"
    "$PY" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input "$CONFLUENT_KAFKA" </dev/null
    printf '%s' "$WANT" >"$VENV/.samsa-stamp"
fi

# --- run -----------------------------------------------------------------------------------------
mkdir -p "$TARGET_DIR/bench"
log "broker CPU $BROKER_CPU, client CPU $CLIENT_CPU; results in $TARGET_DIR/bench"
exec taskset -c "$CLIENT_CPU" "$VENV/bin/python" "$HERE/bench.py" \
    --samsa-bin "$SAMSA_BIN" --kafka-home "$KAFKA_HOME" --kafka-version "$KAFKA_VERSION" \
    --out "$TARGET_DIR/bench" --broker-cpu "$BROKER_CPU" --client-cpu "$CLIENT_CPU" \
    "${QUICK[@]}" "${PASS[@]}"
