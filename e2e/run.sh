#!/usr/bin/env bash
# The e2e entry point (`make e2e`, part of `make test`). Needs no stdin; safe to run from a
# fresh clone on a fresh machine (root, Debian, Go installed).
#
#   e2e/run.sh [TEST...]     TEST: scripts under e2e/ to run (default: smoke-test.sh
#                            operator-test.sh, which runs roll-test.sh with its operator before
#                            uninstalling it)
#
# On the project's own cluster (the default), the phases are:
#   deps        e2e/deps.sh: the Debian packages of the node (apt-get only if one is missing)
#   binaries    e2e/build-binaries.sh etcd kubernetes coredns helm prometheus (cached: ~1 s warm, ~23 min
#               cold with the volume provisioner, plus prometheus/promtool for charts/check.sh)
#   images      scripts/build-images.sh (`make images`) -> target/images/samsa-{broker,operator}.tar
#               (only when operator-test.sh or roll-test.sh is among the tests; cargo's
#               incremental build)
#   test-image  e2e/build-test-image.sh -> target/images/samsa-e2e-{probe,kclient}.tar
#   cleanup     e2e/cluster down: whatever a crashed earlier run left behind
#   cluster-up  e2e/cluster up --node
#   load-images e2e/cluster load-images: every target/images/*.tar
#   TEST...     the tests, with KUBECONFIG set to the cluster's
#   cluster-down e2e/cluster down, always (EXIT trap), even when something failed
# then prints the time of each phase and a last line "e2e: N passed, N failed".
#
# Against an existing cluster (kind, or any kubeconfig):
#   SAMSA_E2E_EXISTING=1 KUBECONFIG=/path/to/kubeconfig e2e/run.sh
# skips deps, the builds, cluster up/down and load-images: the images must already be on the
# nodes (e2e/kind.sh builds them and loads them into a kind cluster).
#
# Environment:
#   SAMSA_E2E_EXISTING=1  use $KUBECONFIG instead of starting a cluster
#   SAMSA_E2E_KEEP=1      leave the project's cluster running afterwards (for debugging)
#   SAMSA_E2E_NICE        niceness of the cluster's processes (default 10: a shared 2-core box)
#   SAMSA_E2E_LOCK_WAIT   seconds to wait for another run on this machine to finish (default 1800)
# and those of e2e/cluster, e2e/smoke-test.sh and e2e/build-binaries.sh.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The machine's Go lives in /usr/local/go; a non-login shell may not have it on PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
# shellcheck source=versions.env
. "$E2E_DIR/versions.env"

EXISTING="${SAMSA_E2E_EXISTING:-0}"
NICE="${SAMSA_E2E_NICE:-10}"
TESTS=("$@")
((${#TESTS[@]})) || TESTS=(smoke-test.sh operator-test.sh)
for t in "${TESTS[@]}"; do
  [[ -x "$E2E_DIR/$t" ]] || { echo "run.sh: no test e2e/$t" >&2; exit 2; }
done

say() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

RESULTS_DIR="$(mktemp -d)"
PHASES=()
PHASE_FAILURES=0
RUN_START=$SECONDS
CLUSTER_STARTED=0

# phase NAME CMD...: run CMD as a timed phase; its exit status is returned.
phase() {
  local name="$1" start=$SECONDS rc=0
  shift
  say "=== $name: $*"
  "$@" 9>&- || rc=$?
  local status=ok
  if ((rc != 0)); then
    status="FAILED (exit $rc)"
    PHASE_FAILURES=$((PHASE_FAILURES + 1))
  fi
  PHASES+=("$(printf '  %-14s %5ss  %s' "$name" $((SECONDS - start)) "$status")")
  say "=== $name: $status after $((SECONDS - start))s"
  return "$rc"
}

# shellcheck disable=SC2317 # run by the EXIT trap
finish() {
  local rc=$? passed=0 failed=0 p f
  trap - EXIT
  if ((CLUSTER_STARTED)); then
    if [[ "${SAMSA_E2E_KEEP:-0}" == 1 ]]; then
      say "SAMSA_E2E_KEEP=1: the cluster stays up; KUBECONFIG=$("$E2E_DIR/cluster" kubeconfig); stop it with e2e/cluster down"
    else
      phase cluster-down "$E2E_DIR/cluster" down || rc=1
    fi
  fi
  echo
  say "phase timings:"
  printf '%s\n' "${PHASES[@]}"
  printf '  %-14s %5ss\n' total $((SECONDS - RUN_START))
  for f in "$RESULTS_DIR"/*; do
    [[ -f "$f" ]] || continue
    read -r p f <"$f" || continue
    passed=$((passed + p))
    failed=$((failed + f))
  done
  rm -rf "$RESULTS_DIR"
  # A phase that failed before or around the tests counts as one failed check.
  local test_failures=$failed
  ((PHASE_FAILURES > 0 && test_failures == 0)) && failed=$((failed + 1))
  ((rc == 0 && failed > 0)) && rc=1
  echo "e2e: $passed passed, $failed failed"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time on this machine: they share the state directory and the ports.
exec 9>"/var/tmp/samsa-e2e.lock"
if ! flock -n 9; then
  say "another e2e run holds /var/tmp/samsa-e2e.lock: waiting up to ${SAMSA_E2E_LOCK_WAIT:-1800}s"
  flock -w "${SAMSA_E2E_LOCK_WAIT:-1800}" 9 || { say "gave up waiting for the lock"; exit 1; }
fi

run_tests() {
  local t rc=0 i=0
  for t in "${TESTS[@]}"; do
    i=$((i + 1))
    SAMSA_E2E_RESULTS="$RESULTS_DIR/$i" phase "${t%.sh}" "$E2E_DIR/$t" || rc=1
  done
  return "$rc"
}

if [[ "$EXISTING" == 1 ]]; then
  [[ -n "${KUBECONFIG:-}" ]] || { say "SAMSA_E2E_EXISTING=1 needs KUBECONFIG"; exit 2; }
  IFS=: read -ra kcs <<<"$KUBECONFIG"
  for kc in "${kcs[@]}"; do
    [[ -r "$kc" ]] || { say "KUBECONFIG names $kc, which is not readable"; exit 2; }
  done
  export KUBECONFIG
  say "existing cluster: KUBECONFIG=$KUBECONFIG, context $("$(command -v "$E2E_DIR/.bin/kubectl" || echo kubectl)" config current-context 2>/dev/null || echo '?')"
  if [[ ! -x "$E2E_DIR/.bin/kubectl" ]] && ! command -v kubectl >/dev/null; then
    phase kubectl env K8S_BINARIES=kubectl "$E2E_DIR/build-binaries.sh" kubernetes
  fi
  if [[ ! -x "$E2E_DIR/.bin/helm" ]] && ! command -v helm >/dev/null; then
    phase helm "$E2E_DIR/build-binaries.sh" helm
  fi
  # charts/check.sh (run by operator-test.sh) tests the chart's alerts with promtool.
  if [[ ! -x "$E2E_DIR/.bin/promtool" && -z "${PROMTOOL:-}" ]] && ! command -v promtool >/dev/null; then
    phase promtool "$E2E_DIR/build-binaries.sh" prometheus
  fi
  say "the images (target/images/*.tar) must already be on the nodes: e2e/kind.sh loads them into kind"
  run_tests
  exit 0
fi

[[ -z "${KUBECONFIG:-}" ]] || say "ignoring KUBECONFIG=$KUBECONFIG: testing the project's own cluster (SAMSA_E2E_EXISTING=1 to use it)"
unset KUBECONFIG
phase deps "$E2E_DIR/deps.sh"
phase binaries "$E2E_DIR/build-binaries.sh" etcd kubernetes coredns helm prometheus
if [[ " ${TESTS[*]} " == *" operator-test.sh "* || " ${TESTS[*]} " == *" roll-test.sh "* ]]; then
  phase images "$(dirname "$E2E_DIR")/scripts/build-images.sh"
fi
phase test-image "$E2E_DIR/build-test-image.sh"
# The node's disk is this machine's: show what is free, since the kubelet stops scheduling
# below its eviction threshold.
say "free disk for the node: $(df -h --output=avail /var/tmp | tail -n 1 | tr -d ' ') on /var/tmp"
CLUSTER_STARTED=1
phase cleanup "$E2E_DIR/cluster" down
phase cluster-up nice -n "$NICE" "$E2E_DIR/cluster" up --node
phase load-images "$E2E_DIR/cluster" load-images
KUBECONFIG="$("$E2E_DIR/cluster" kubeconfig)"
export KUBECONFIG SAMSA_E2E_EXPECT_K8S="${K8S_VERSION%.*}."
run_tests
