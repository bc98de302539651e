#!/usr/bin/env bash
# Build the e2e test image samsa.local/e2e/probe:1 (e2e/probe, a static Go program, packed by
# e2e/mkimage into a FROM-scratch image) as a docker-archive tarball in the image directory,
# where `e2e/cluster load-images` and `e2e/kind.sh` pick it up.
#
#   e2e/build-test-image.sh
#
# Environment:
#   SAMSA_E2E_IMAGES      image directory (default: <repo>/target/images)
#   SAMSA_E2E_TEST_IMAGE  image name (default samsa.local/e2e/probe:1)
#   SAMSA_E2E_ARCH        GOARCH of the nodes (default: this machine's)
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGES="${SAMSA_E2E_IMAGES:-$(dirname "$E2E_DIR")/target/images}"
IMAGE="${SAMSA_E2E_TEST_IMAGE:-samsa.local/e2e/probe:1}"
OUT="$IMAGES/samsa-e2e-probe.tar"

command -v go >/dev/null || { echo "build-test-image: go is not installed" >&2; exit 1; }
ARCH="${SAMSA_E2E_ARCH:-$(go env GOARCH)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$E2E_DIR/probe"
  GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" GOFLAGS=-buildvcs=false \
    nice -n "${SAMSA_NICE:-10}" go build -trimpath -ldflags "-s -w" -o "$tmp/probe" .
)
[[ "$ARCH" != "$(go env GOARCH)" ]] || "$tmp/probe" version >/dev/null
mkdir -p "$IMAGES"
MKIMAGE_ARCH="$ARCH" "$E2E_DIR/mkimage" "$IMAGE" "$OUT" /probe "$tmp/probe=/probe"
