#!/usr/bin/env bash
# Builds the container images of Samsa's programs as docker-archive tarballs (what
# `docker save` writes and `ctr images import` / `kind load image-archive` read), without a
# Docker engine: each image is one FROM-scratch layer holding one statically linked binary
# (`cargo build --release` with `-C target-feature=+crt-static`), packed by e2e/mkimage.
#
#   scripts/build-images.sh [PROGRAM...]      (make images)
#
# PROGRAM is samsa-broker and/or samsa-operator (default: every program the workspace has).
# Images: samsa.local/samsa-broker:<version> and samsa.local/samsa-operator:<version>, the
# version being the workspace's, in target/images/<program>.tar, where `e2e/cluster
# load-images` and `e2e/kind.sh` pick them up.
#
# Environment:
#   SAMSA_IMAGE_REGISTRY  image name prefix (default samsa.local)
#   SAMSA_IMAGE_TAG       tag (default: the workspace version, e.g. 0.1.0)
#   SAMSA_E2E_IMAGES      output directory (default <repo>/target/images)
#   SAMSA_NICE            niceness of the build (default 10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf 'build-images: %s\n' "$*" >&2; }

TARGET="$(rustc -vV | sed -n 's/^host: //p')"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
REGISTRY="${SAMSA_IMAGE_REGISTRY:-samsa.local}"
TAG="${SAMSA_IMAGE_TAG:-$VERSION}"
IMAGES="${SAMSA_E2E_IMAGES:-$ROOT/target/images}"
[[ -n $TARGET && -n $TAG ]] || { log "cannot tell the host target or the version"; exit 1; }

programs=("$@")
if ((${#programs[@]} == 0)); then
    programs=(samsa-broker)
    [[ -f operator/Cargo.toml ]] && programs+=(samsa-operator)
fi
packages=()
for p in "${programs[@]}"; do
    case $p in
    samsa-broker | samsa-operator) packages+=(-p "$p" --bin "$p") ;;
    *) log "unknown program '$p' (samsa-broker, samsa-operator)"; exit 2 ;;
    esac
done

# glibc linked statically: the binaries need nothing from the image. An explicit --target keeps
# these flags away from the build scripts and proc-macros, and the output in its own directory.
log "cargo build --release --target $TARGET (crt-static) ${programs[*]}"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    nice -n "${SAMSA_NICE:-10}" cargo build --release --locked --target "$TARGET" "${packages[@]}"

mkdir -p "$IMAGES"
for p in "${programs[@]}"; do
    bin="$ROOT/target/$TARGET/release/$p"
    # A dynamically linked program names its loader (PT_INTERP); a static(-pie) one does not.
    if readelf -l "$bin" | grep -q 'program interpreter'; then
        log "$bin is dynamically linked: $(readelf -l "$bin" | grep 'program interpreter')"
        exit 1
    fi
    "$bin" --version >/dev/null || { log "$bin --version failed"; exit 1; }
    # The release profile keeps line tables for profiling; the image gets a stripped copy.
    stripped="$(mktemp -d)"
    objcopy --strip-debug "$bin" "$stripped/$p"
    "$ROOT/e2e/mkimage" "$REGISTRY/$p:$TAG" "$IMAGES/$p.tar" "/$p" "$stripped/$p=/$p"
    rm -rf "$stripped"
done
