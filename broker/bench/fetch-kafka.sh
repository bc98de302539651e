#!/usr/bin/env bash
# Fetches Apache Kafka (kafka_2.13 + kafka-tools + a log4j2 backend) from Maven Central into
#   ${SAMSA_CACHE:-$HOME/.cache/samsa}/kafka-<version>/libs
# with `mvn dependency:copy-dependencies` on broker/bench/pom.xml, once: a stamp written last
# makes later calls a fast no-op. Prints the Kafka home directory on its last stdout line.
#
# Usage: fetch-kafka.sh [VERSION]     (default: the pom's kafka.version, 4.1.1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${1:-4.1.1}"
CACHE="${SAMSA_CACHE:-$HOME/.cache/samsa}"
HOME_DIR="$CACHE/kafka-$VERSION"
STAMP="$HOME_DIR/.samsa-stamp"
# Bump when pom.xml's list changes: the cached copy is then fetched again.
WANT="stamp=1 kafka=$VERSION"

log() { printf 'fetch-kafka: %s\n' "$*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && ls "$HOME_DIR"/libs/kafka_2.13-*.jar >/dev/null 2>&1; then
    log "cached: $HOME_DIR"
else
    if ! command -v mvn >/dev/null 2>&1; then
        log "mvn not found: installing maven from Debian"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven </dev/null >/dev/null \
            || { apt-get update -qq </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven </dev/null >/dev/null; }
    fi
    log "fetching Kafka $VERSION from Maven Central into $HOME_DIR"
    rm -rf "$HOME_DIR"
    mkdir -p "$HOME_DIR"
    mvn -B -q -f "$HERE/pom.xml" -Dkafka.version="$VERSION" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$HOME_DIR/libs" </dev/null >&2
    printf '%s' "$WANT" >"$STAMP"
    log "fetched: $(ls "$HOME_DIR/libs" | wc -l) jars"
fi
echo "$HOME_DIR"
