#!/usr/bin/env bash
# Build the e2e test images as docker-archive tarballs in the image directory, where
# `e2e/cluster load-images` and `e2e/kind.sh` pick them up. Each is a static Go program
# packed by e2e/mkimage into a FROM-scratch image:
#   samsa.local/e2e/probe:1    e2e/probe (standard library only): the smoke test's pods
#   samsa.local/e2e/kclient:1  e2e/kclient (franz-go, from the Go module proxy on the first
#                              build): the Kafka client of e2e/operator-test.sh
#   samsa.local/e2e/prometheus:1  Prometheus, built from its Go module by
#                              `e2e/build-binaries.sh prometheus`: the roll test's metrics scenario
#
#   e2e/build-test-image.sh [probe] [kclient] [prometheus]      (default: all three)
#
# Environment:
#   SAMSA_E2E_IMAGES         image directory (default: <repo>/target/images)
#   SAMSA_E2E_TEST_IMAGE     probe image name (default samsa.local/e2e/probe:1)
#   SAMSA_E2E_KCLIENT_IMAGE  kclient image name (default samsa.local/e2e/kclient:1)
#   SAMSA_E2E_PROMETHEUS_IMAGE  prometheus image name (default samsa.local/e2e/prometheus:1)
#   SAMSA_E2E_BIN            where the prometheus binary is (default e2e/.bin)
#   SAMSA_E2E_ARCH           GOARCH of the nodes (default: this machine's)
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGES="${SAMSA_E2E_IMAGES:-$(dirname "$E2E_DIR")/target/images}"
IMAGE="${SAMSA_E2E_TEST_IMAGE:-samsa.local/e2e/probe:1}"
WHICH=("$@")
((${#WHICH[@]})) || WHICH=(probe kclient prometheus)

command -v go >/dev/null || { echo "build-test-image: go is not installed" >&2; exit 1; }
ARCH="${SAMSA_E2E_ARCH:-$(go env GOARCH)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$IMAGES"

# build DIR IMAGE OUT: a static binary of e2e/DIR, packed as IMAGE into OUT with entry point /DIR.
build() {
  local dir="$1" image="$2" out="$3"
  (
    cd "$E2E_DIR/$dir"
    GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" GOFLAGS=-buildvcs=false \
      nice -n "${SAMSA_NICE:-10}" go build -trimpath -ldflags "-s -w" -o "$tmp/$dir" .
  )
  MKIMAGE_ARCH="$ARCH" "$E2E_DIR/mkimage" "$image" "$out" "/$dir" "$tmp/$dir=/$dir"
}

for w in "${WHICH[@]}"; do
  case $w in
    probe)
      build probe "$IMAGE" "$IMAGES/samsa-e2e-probe.tar"
      [[ "$ARCH" != "$(go env GOARCH)" ]] || "$tmp/probe" version >/dev/null
      ;;
    kclient) build kclient "${SAMSA_E2E_KCLIENT_IMAGE:-samsa.local/e2e/kclient:1}" "$IMAGES/samsa-e2e-kclient.tar" ;;
    prometheus)
      # Prometheus as built from its Go module by e2e/build-binaries.sh prometheus (static).
      prom="$(readlink -f "${SAMSA_E2E_BIN:-$E2E_DIR/.bin}/prometheus" || true)"
      [[ -x "$prom" ]] || { echo "build-test-image: no prometheus binary (e2e/build-binaries.sh prometheus)" >&2; exit 1; }
      MKIMAGE_ARCH="$ARCH" "$E2E_DIR/mkimage" "${SAMSA_E2E_PROMETHEUS_IMAGE:-samsa.local/e2e/prometheus:1}" \
        "$IMAGES/samsa-e2e-prometheus.tar" /prometheus "$prom=/prometheus"
      ;;
    *) echo "build-test-image: unknown image '$w' (probe, kclient, prometheus)" >&2; exit 2 ;;
  esac
done
