# Shared check helpers of the e2e test scripts (smoke-test.sh, operator-test.sh); sourced, not
# run. Before sourcing, a script sets CHECKS_TAG (its name in `say` lines and the summary);
# it may set CHECKS_FAIL_LINES (output lines shown under a FAIL, default 30) and
# CHECKS_INTERVAL (seconds between `eventually` attempts, default 1).
# shellcheck shell=bash

PASSED=0
FAILED=0
FAILED_NAMES=()

say() { printf '[%s %s] %s\n' "$CHECKS_TAG" "$(date +%H:%M:%S)" "$*"; }
pass() {
  printf 'PASS  %s\n' "$*"
  PASSED=$((PASSED + 1))
}
fail() {
  printf 'FAIL  %s\n' "$1"
  [[ -n "${2:-}" ]] && printf '%s\n' "$2" | head -n "${CHECKS_FAIL_LINES:-30}" | sed 's/^/      /'
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("$1")
}

# check NAME FUNC ARGS...: PASS when FUNC succeeds (the last line of its output, if any, is
# appended), else FAIL with its output.
check() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    pass "$name${out:+: $(printf '%s' "$out" | tail -n 1)}"
    return 0
  fi
  fail "$name" "$out"
  return 1
}

# eventually SECONDS NAME FUNC ARGS...: like check, but retries FUNC every CHECKS_INTERVAL
# seconds until it succeeds or SECONDS have passed.
eventually() {
  local limit="$1" name="$2" out start=$SECONDS
  shift 2
  until out="$("$@" 2>&1)"; do
    if ((SECONDS - start >= limit)); then
      fail "$name (still failing after ${limit}s)" "$out"
      return 1
    fi
    sleep "${CHECKS_INTERVAL:-1}"
  done
  pass "$name: $(printf '%s' "$out" | tail -n 1) (after $((SECONDS - start))s)"
}

# report_results: writes "PASSED FAILED" to SAMSA_E2E_RESULTS when set, lists the failed
# checks, prints the summary line; returns 1 when a check failed.
report_results() {
  [[ -n "${SAMSA_E2E_RESULTS:-}" ]] && echo "$PASSED $FAILED" >"$SAMSA_E2E_RESULTS"
  echo "$CHECKS_TAG: $PASSED passed, $FAILED failed"
  if ((FAILED)); then
    printf 'failed checks:\n'
    printf '  - %s\n' "${FAILED_NAMES[@]}"
    return 1
  fi
}
