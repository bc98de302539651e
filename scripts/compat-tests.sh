#!/usr/bin/env bash
# Runs the client-compatibility suite (broker/tests/compat/) against a samsa-broker binary.
#
#   scripts/compat-tests.sh                      # build target/debug/samsa-{broker,operator}, run all
#   scripts/compat-tests.sh -k kcat -x           # extra arguments go to pytest
#   SAMSA_BROKER_BIN=target/release/samsa-broker scripts/compat-tests.sh   # no build
#
# SAMSA_OPERATOR_BIN (samsa-operator, for `samsa-operator metrics`) defaults to the file next to
# SAMSA_BROKER_BIN.
#
# Installs its dependencies with scripts/test-deps.sh (a fast no-op when present).
# Exit code: pytest's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

deps_out="$("$ROOT/scripts/test-deps.sh" </dev/null)"
SAMSA_VENV_LATEST="$(printf '%s\n' "$deps_out" | sed -n 's/^SAMSA_VENV_LATEST=//p')"
SAMSA_VENV_KP202="$(printf '%s\n' "$deps_out" | sed -n 's/^SAMSA_VENV_KP202=//p')"
export SAMSA_VENV_LATEST SAMSA_VENV_KP202

if [ -z "${SAMSA_BROKER_BIN:-}" ]; then
    cargo build -p samsa-broker --bin samsa-broker -p samsa-operator --bin samsa-operator
    SAMSA_BROKER_BIN="$ROOT/target/debug/samsa-broker"
fi
case "$SAMSA_BROKER_BIN" in
    /*) ;;
    *) SAMSA_BROKER_BIN="$ROOT/$SAMSA_BROKER_BIN" ;;
esac
if [ ! -x "$SAMSA_BROKER_BIN" ]; then
    echo "compat-tests: broker binary not found or not executable: $SAMSA_BROKER_BIN" >&2
    exit 2
fi
export SAMSA_BROKER_BIN
# samsa-operator (its `metrics` subcommand): next to the broker binary unless set.
SAMSA_OPERATOR_BIN="${SAMSA_OPERATOR_BIN:-$(dirname "$SAMSA_BROKER_BIN")/samsa-operator}"
case "$SAMSA_OPERATOR_BIN" in
    /*) ;;
    *) SAMSA_OPERATOR_BIN="$ROOT/$SAMSA_OPERATOR_BIN" ;;
esac
export SAMSA_OPERATOR_BIN

set +e
# Options (-ra, no cache dir) live in broker/tests/compat/pytest.ini.
"$SAMSA_VENV_LATEST/bin/python" -m pytest "$ROOT/broker/tests/compat" "$@"
rc=$?
set -e
exit "$rc"
