#!/usr/bin/env bash
# The e2e tests on a kind cluster, for machines that have a Docker engine (kind runs its nodes as
# Docker containers). UNTESTED in the project's own environment, which has no Docker engine:
# there, use e2e/run.sh, which runs a real cluster from upstream binaries without Docker.
#
#   e2e/kind.sh [test]        create the cluster (unless it exists), build and load the image
#                             archives, run the e2e tests against it, delete the cluster if this
#                             run created it (SAMSA_KIND_KEEP=1 keeps it)
#   e2e/kind.sh up            create the cluster (unless it exists) and print its kubeconfig path
#   e2e/kind.sh load [TAR...] build the images (scripts/build-images.sh: samsa-broker and
#                             samsa-operator; e2e/build-test-image.sh: probe and kclient), then
#                             `kind load image-archive` each TAR (default: every *.tar in the
#                             image directory, target/images/)
#   e2e/kind.sh kubeconfig    print the kubeconfig path
#   e2e/kind.sh down          delete the cluster
#
# Needs: Linux (the image tools use GNU tar), kind on PATH (e.g. `go install sigs.k8s.io/kind@<release>`; pick a release whose
# default node image is Kubernetes 1.33-1.35, next to the project's v1.34 kubectl), a running
# Docker engine (`docker info` works), Go for the test images, cargo for the Samsa images, and
# helm and promtool (e2e/build-binaries.sh helm prometheus, or on PATH) for the operator test.
#
# Environment:
#   SAMSA_KIND_CLUSTER     cluster name (default samsa-e2e)
#   SAMSA_KIND_NODE_IMAGE  node image for `kind create cluster --image` (default: kind's own)
#   SAMSA_KIND_KUBECONFIG  where the kubeconfig goes (default ~/.cache/samsa/kind/<name>.kubeconfig)
#   SAMSA_KIND_KEEP=1      `test` leaves the cluster running
#   SAMSA_E2E_IMAGES       image directory (default <repo>/target/images)
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="${SAMSA_KIND_CLUSTER:-samsa-e2e}"
KUBECONFIG_FILE="${SAMSA_KIND_KUBECONFIG:-${SAMSA_CACHE:-$HOME/.cache/samsa}/kind/$NAME.kubeconfig}"
IMAGES="${SAMSA_E2E_IMAGES:-$(dirname "$E2E_DIR")/target/images}"

say() { printf '[kind.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[kind.sh] ERROR: %s\n' "$*" >&2
  exit 1
}

need_kind() {
  command -v kind >/dev/null ||
    die "kind is not installed: go install sigs.k8s.io/kind@<release> (https://kind.sigs.k8s.io); without Docker, use e2e/run.sh"
  command -v docker >/dev/null || die "no docker command: kind needs a Docker engine; without one, use e2e/run.sh"
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info fails): kind needs one; without it, use e2e/run.sh"
}

exists() { grep -qxF "$NAME" <<<"$(kind get clusters 2>/dev/null)"; }

CREATED=0
cmd_up() {
  need_kind
  mkdir -p "$(dirname "$KUBECONFIG_FILE")"
  if exists; then
    say "kind cluster $NAME exists: reusing it"
    kind export kubeconfig --name "$NAME" --kubeconfig "$KUBECONFIG_FILE" >&2
  else
    local args=(create cluster --name "$NAME" --kubeconfig "$KUBECONFIG_FILE" --wait 180s)
    [[ -n "${SAMSA_KIND_NODE_IMAGE:-}" ]] && args+=(--image "$SAMSA_KIND_NODE_IMAGE")
    say "kind ${args[*]}"
    kind "${args[@]}" >&2
    CREATED=1
  fi
}

cmd_load() {
  need_kind
  exists || die "no kind cluster $NAME: run e2e/kind.sh up first"
  if (($# == 0)); then
    "$(dirname "$E2E_DIR")/scripts/build-images.sh" >&2
    "$E2E_DIR/build-test-image.sh" >&2
  fi
  local files=("$@") f
  if ((${#files[@]} == 0)); then
    shopt -s nullglob
    files=("$IMAGES"/*.tar)
    shopt -u nullglob
  fi
  ((${#files[@]})) || die "no image archives (*.tar) in $IMAGES"
  for f in "${files[@]}"; do
    [[ -f "$f" ]] || die "$f: no such file"
    say "kind load image-archive $f --name $NAME"
    kind load image-archive "$f" --name "$NAME" >&2
  done
}

cmd_down() {
  need_kind
  if exists; then
    kind delete cluster --name "$NAME" >&2
  else
    say "no kind cluster $NAME"
  fi
  rm -f "$KUBECONFIG_FILE"
}

cmd_test() {
  cmd_up
  if [[ "${SAMSA_KIND_KEEP:-0}" != 1 && "$CREATED" == 1 ]]; then
    trap 'say "deleting the kind cluster $NAME"; kind delete cluster --name "$NAME" >&2 || true; rm -f "$KUBECONFIG_FILE"' EXIT
  fi
  cmd_load
  SAMSA_E2E_EXISTING=1 KUBECONFIG="$KUBECONFIG_FILE" "$E2E_DIR/run.sh" "$@"
}

case "${1:-test}" in
  test)
    shift || true
    cmd_test "$@"
    ;;
  up)
    cmd_up
    echo "$KUBECONFIG_FILE"
    ;;
  load)
    shift
    cmd_load "$@"
    ;;
  kubeconfig) echo "$KUBECONFIG_FILE" ;;
  down) cmd_down ;;
  *)
    echo "usage: $0 [test [TEST...]|up|load [TARBALL...]|kubeconfig|down]" >&2
    exit 2
    ;;
esac
