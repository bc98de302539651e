#!/usr/bin/env bash
# Build the upstream binaries the e2e cluster needs, from the Go module proxy, with version
# stamps, into a cache outside the repository; link them into e2e/.bin/.
#
#   e2e/build-binaries.sh [component...]     components: etcd kubernetes helm coredns
#                                            prometheus hostpath-provisioner (default: all)
#
# `kubernetes` builds the cluster's Kubernetes binaries and also the cluster's volume provisioner
# (e2e/hostpath-provisioner, a small main on sigs.k8s.io/sig-storage-lib-external-provisioner),
# so whatever builds the cluster (`make k8s-bin`, e2e/run.sh, e2e/cluster up) builds it too.
#
# Idempotent: a binary whose pinned version (and Go toolchain) is already built and answers its
# version check is skipped. Versions are pinned in e2e/versions.env.
#
# Environment:
#   SAMSA_CACHE     cache root (default ~/.cache/samsa); binaries go to $SAMSA_CACHE/k8s-bin/<stamp>/
#   SAMSA_NICE      niceness for the compilers (default 19)
#   K8S_BINARIES    space-separated subset of what `kubernetes` builds (default: kube-apiserver
#                   kube-controller-manager kube-scheduler kubectl kube-proxy kubelet
#                   hostpath-provisioner)
#   FORCE=1         rebuild even when cached
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$E2E_DIR/versions.env"

CACHE="${SAMSA_CACHE:-$HOME/.cache/samsa}"
BIN_ROOT="$CACHE/k8s-bin"
WORK_ROOT="$CACHE/k8s-build"
LINK_DIR="$E2E_DIR/.bin"
NICE="${SAMSA_NICE:-19}"
FORCE="${FORCE:-0}"
: "${K8S_BINARIES:=kube-apiserver kube-controller-manager kube-scheduler kubectl kube-proxy kubelet hostpath-provisioner}"

# Never let the go command fetch a newer toolchain: dependencies' `toolchain` lines ask for one.
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

command -v go >/dev/null || { echo "build-binaries: go is not installed" >&2; exit 1; }
GO_VERSION="$(go env GOVERSION)"
TIMES_LOG="$BIN_ROOT/build-times.log"
mkdir -p "$BIN_ROOT" "$WORK_ROOT" "$LINK_DIR"

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[build-binaries] ERROR: %s\n' "$*" >&2; exit 1; }
gobuild() { nice -n "$NICE" go "$@"; }

# link NAME DIR: point e2e/.bin/NAME at DIR/NAME.
link() { ln -sfn "$2/$1" "$LINK_DIR/$1"; }

# stamp_ok DIR NAME STAMP: the binary exists, was built with STAMP, and is executable.
stamp_ok() {
  [[ "$FORCE" != 1 && -x "$1/$2" && -f "$1/.stamp-$2" ]] && [[ "$(cat "$1/.stamp-$2")" == "$3" ]]
}

# record NAME VERSION SECONDS: append to the build-time log.
record() {
  printf '%s\t%s\t%s\t%ss\t%s\n' "$(date -u +%FT%TZ)" "$1" "$2" "$3" "$GO_VERSION" >>"$TIMES_LOG"
}

# verify NAME EXPECTED CMD...: run the version command, require EXPECTED in its output.
verify() {
  local name="$1" want="$2" out
  shift 2
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    return 1
  fi
  if [[ "$out" != *"$want"* ]]; then
    printf '%s: version output does not mention %s:\n%s\n' "$name" "$want" "$out" >&2
    return 1
  fi
  log "  $name: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)"
}

TOTAL_START=$SECONDS
BUILT=()
SKIPPED=()

# ---------------------------------------------------------------------------------------------
# etcd (+ etcdctl): a throwaway main module calling etcdmain.Main.
etcd_prepare_module() {
  local ver="$1" work="$2"
  if [[ -f "$work/go.sum" && -f "$work/.prepared" && "$(cat "$work/.prepared")" == "$ver $GO_VERSION" ]]; then
    return
  fi
  log "etcd $ver: preparing build module in $work"
  rm -rf "$work" && mkdir -p "$work/etcd"
  cat >"$work/go.mod" <<EOF
module samsa.local/e2e/etcd

go 1.24.0

require (
	go.etcd.io/etcd/etcdctl/v3 $ver
	go.etcd.io/etcd/server/v3 $ver
)
EOF
  cat >"$work/etcd/main.go" <<'EOF'
// Command etcd runs the etcd server from the published Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  cat >"$work/tools.go" <<'EOF'
//go:build tools

// Package tools pins etcdctl, built from this module too.
package tools

import _ "go.etcd.io/etcd/etcdctl/v3"
EOF
  (cd "$work" && gobuild mod tidy)
  echo "$ver $GO_VERSION" >"$work/.prepared"
}

build_etcd() {
  local ver="$ETCD_VERSION" dir="$BIN_ROOT/etcd-$ETCD_VERSION" work="$WORK_ROOT/etcd-$ETCD_VERSION"
  local stamp="etcd $ver $GO_VERSION" plain="${ver#v}"
  local ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-${ver}"
  mkdir -p "$dir"
  local b pkg want vcmd
  for b in etcd etcdctl; do
    if [[ "$b" == etcd ]]; then
      pkg=./etcd want="etcd Version: $plain" vcmd=--version
    else
      pkg=go.etcd.io/etcd/etcdctl/v3 want="etcdctl version: $plain" vcmd=version
    fi
    if stamp_ok "$dir" "$b" "$stamp" && [[ "$("$dir/$b" "$vcmd" 2>/dev/null)" == *"$want"* ]]; then
      log "$b $ver: cached in $dir, skipping"
      SKIPPED+=("$b")
    else
      log "$b $ver: building"
      local t0=$SECONDS
      etcd_prepare_module "$ver" "$work"
      (cd "$work" && CGO_ENABLED=0 gobuild build -trimpath -ldflags "$ldflags" -o "$dir/$b.new" "$pkg")
      mv -f "$dir/$b.new" "$dir/$b"
      verify "$b" "$want" "$dir/$b" "$vcmd" || die "$b failed its version check"
      echo "$stamp" >"$dir/.stamp-$b"
      local dt=$((SECONDS - t0))
      log "$b $ver: built in ${dt}s"
      record "$b" "$ver" "$dt"
      BUILT+=("$b ${dt}s")
    fi
    link "$b" "$dir"
  done
}

# ---------------------------------------------------------------------------------------------
# Kubernetes: a throwaway module requiring k8s.io/kubernetes with every staging module replaced
# by its published v0.Y.Z.
k8s_prepare_module() {
  local ver="$1" work="$2" staging_ver="v0.${1#v1.}"
  if [[ -f "$work/go.sum" && -f "$work/.prepared" && "$(cat "$work/.prepared")" == "$ver $GO_VERSION" ]]; then
    return
  fi
  log "kubernetes $ver: preparing build module in $work"
  rm -rf "$work" && mkdir -p "$work"
  local gomod
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$ver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$ver"
  local staging
  staging="$(sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*$|\1|p' "$gomod" | sort -u)"
  [[ -n "$staging" ]] || die "no staging replacements found in $gomod"
  {
    printf 'module samsa.local/e2e/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$ver"
    local m
    for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_ver"; done
    printf ')\n'
  } >"$work/go.mod"
  {
    printf '//go:build tools\n\n// Package tools pins the Kubernetes commands this module builds.\npackage tools\n\nimport (\n'
    local b
    for b in kube-apiserver kube-controller-manager kube-scheduler kubectl kube-proxy kubelet; do
      printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"
    done
    printf ')\n'
  } >"$work/tools.go"
  local t0=$SECONDS
  (cd "$work" && gobuild mod tidy)
  echo "$ver $GO_VERSION" >"$work/.prepared"
  log "kubernetes $ver: module ready ($(echo "$staging" | wc -l) staging modules replaced by $staging_ver) in $((SECONDS - t0))s"
}

k8s_version_check() {
  local dir="$1" b="$2" ver="$3"
  case "$b" in
    kubectl) verify "$b" "$ver" "$dir/$b" version --client ;;
    *) verify "$b" "Kubernetes $ver" "$dir/$b" --version ;;
  esac
}

build_kubernetes() {
  local ver="$K8S_VERSION" dir="$BIN_ROOT/kubernetes-$K8S_VERSION" work="$WORK_ROOT/kubernetes-$K8S_VERSION"
  [[ "$ver" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "K8S_VERSION must look like v1.Y.Z, got $ver"
  local minor="${BASH_REMATCH[1]}"
  local stamp="kubernetes $ver $GO_VERSION"
  mkdir -p "$dir"
  local todo=() b
  for b in $K8S_BINARIES; do
    if [[ "$b" == hostpath-provisioner ]]; then
      build_provisioner
    elif stamp_ok "$dir" "$b" "$stamp" && k8s_version_check "$dir" "$b" "$ver" >/dev/null 2>&1; then
      log "$b $ver: cached in $dir, skipping"
      SKIPPED+=("$b")
      link "$b" "$dir"
    else
      todo+=("$b")
    fi
  done
  ((${#todo[@]})) || return 0
  k8s_prepare_module "$ver" "$work"
  # The build date is part of the stamp only once per version, so rebuilding one binary does
  # not give it a different date from its siblings.
  local build_date
  if [[ -f "$dir/.build-date" ]]; then
    build_date="$(cat "$dir/.build-date")"
  else
    build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "$build_date" >"$dir/.build-date"
  fi
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  for b in "${todo[@]}"; do
    local cgo=0
    [[ "$b" == kubelet ]] && cgo=1
    log "$b $ver: building (CGO_ENABLED=$cgo)"
    local t0=$SECONDS
    (cd "$work" && CGO_ENABLED=$cgo gobuild build -trimpath -ldflags "$ldflags" -o "$dir/$b.new" "k8s.io/kubernetes/cmd/$b")
    mv -f "$dir/$b.new" "$dir/$b"
    k8s_version_check "$dir" "$b" "$ver" || die "$b failed its version check"
    echo "$stamp" >"$dir/.stamp-$b"
    local dt=$((SECONDS - t0))
    log "$b $ver: built in ${dt}s"
    record "$b" "$ver" "$dt"
    BUILT+=("$b ${dt}s")
    link "$b" "$dir"
  done
}

# ---------------------------------------------------------------------------------------------
# The cluster's dynamic volume provisioner: e2e/hostpath-provisioner (its own module, go.mod and
# go.sum committed), built against the library release pinned in versions.env. The stamp has a
# digest of the sources, so a change to them rebuilds it.
PROVISIONER_LIB=sigs.k8s.io/sig-storage-lib-external-provisioner
build_provisioner() {
  local ver="$PROVISIONER_LIB_VERSION" src="$E2E_DIR/hostpath-provisioner" b=hostpath-provisioner
  local dir="$BIN_ROOT/hostpath-provisioner-$ver" work="$WORK_ROOT/hostpath-provisioner-$ver"
  local mod="$PROVISIONER_LIB/${ver%%.*}" digest
  [[ "$ver" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "PROVISIONER_LIB_VERSION must look like vX.Y.Z, got $ver"
  digest="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)"
  local stamp="$b $ver $GO_VERSION $digest"
  mkdir -p "$dir"
  if stamp_ok "$dir" "$b" "$stamp" && [[ "$("$dir/$b" --version 2>/dev/null)" == *"$mod $ver)"* ]]; then
    log "$b ($mod $ver): cached in $dir, skipping"
    SKIPPED+=("$b")
  else
    log "$b ($mod $ver): building"
    local t0=$SECONDS
    rm -rf "$work" && mkdir -p "$work"
    cp "$src/go.mod" "$src/go.sum" "$src"/*.go "$work/"
    # versions.env may pin another release than go.mod: build that one.
    if ! awk -v m="$mod" -v v="$ver" '($1 == m && $2 == v) || ($1 == "require" && $2 == m && $3 == v) {f = 1} END {exit !f}' "$work/go.mod"; then
      log "$b: go.mod does not require $mod $ver; switching the build copy to it"
      (cd "$work" && go mod edit -require="$mod@$ver" && gobuild mod tidy)
    fi
    (cd "$work" && CGO_ENABLED=0 gobuild build -trimpath -ldflags "-s -w" -o "$dir/$b.new" .)
    mv -f "$dir/$b.new" "$dir/$b"
    verify "$b" "$mod $ver)" "$dir/$b" --version || die "$b failed its version check"
    echo "$stamp" >"$dir/.stamp-$b"
    local dt=$((SECONDS - t0))
    log "$b ($mod $ver): built in ${dt}s"
    record "$b" "$ver" "$dt"
    BUILT+=("$b ${dt}s")
  fi
  link "$b" "$dir"
}

# ---------------------------------------------------------------------------------------------
# helm and CoreDNS: plain `go install pkg@version` (neither module has replace directives).
build_helm() {
  local ver="$HELM_VERSION" dir="$BIN_ROOT/helm-$HELM_VERSION" stamp="helm $HELM_VERSION $GO_VERSION"
  mkdir -p "$dir"
  if stamp_ok "$dir" helm "$stamp" && [[ "$("$dir/helm" version --short 2>/dev/null)" == "$ver"* ]]; then
    log "helm $ver: cached in $dir, skipping"
    SKIPPED+=("helm")
  else
    log "helm $ver: building"
    local t0=$SECONDS
    # Helm's Makefile stamps the Kubernetes version it assumes for `helm template` and lint
    # from its own client-go; do the same.
    local gomod kmaj=1 kmin=20
    gomod="$(cd "$WORK_ROOT" && go mod download -json "helm.sh/helm/v3@$ver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    local cg
    cg="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)"
    [[ -n "$cg" ]] && kmin="$cg"
    local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$ver -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$kmaj -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kmin"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$kmaj -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kmin"
    (cd "$WORK_ROOT" && GOBIN="$dir" CGO_ENABLED=0 gobuild install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$ver")
    verify helm "$ver" "$dir/helm" version --short || die "helm failed its version check"
    echo "$stamp" >"$dir/.stamp-helm"
    local dt=$((SECONDS - t0))
    log "helm $ver: built in ${dt}s"
    record helm "$ver" "$dt"
    BUILT+=("helm ${dt}s")
  fi
  link helm "$dir"
}

build_coredns() {
  local ver="$COREDNS_VERSION" dir="$BIN_ROOT/coredns-$COREDNS_VERSION" stamp="coredns $COREDNS_VERSION $GO_VERSION"
  mkdir -p "$dir"
  if stamp_ok "$dir" coredns "$stamp" && [[ "$("$dir/coredns" -version 2>/dev/null)" == *"CoreDNS-${ver#v}"* ]]; then
    log "coredns $ver: cached in $dir, skipping"
    SKIPPED+=("coredns")
  else
    log "coredns $ver: building"
    local t0=$SECONDS
    (cd "$WORK_ROOT" && GOBIN="$dir" CGO_ENABLED=0 gobuild install -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=module-$ver" \
      "github.com/coredns/coredns@$ver")
    verify coredns "CoreDNS-${ver#v}" "$dir/coredns" -version || die "coredns failed its version check"
    echo "$stamp" >"$dir/.stamp-coredns"
    local dt=$((SECONDS - t0))
    log "coredns $ver: built in ${dt}s"
    record coredns "$ver" "$dt"
    BUILT+=("coredns ${dt}s")
  fi
  link coredns "$dir"
}

# ---------------------------------------------------------------------------------------------
# Prometheus and promtool: `go install pkg@version` too (github.com/prometheus/prometheus has no
# replace directives). The module's tags are v0.3XY.Z for Prometheus 3.XY.Z. Built without the
# `builtinassets` tag: the module does not ship the compiled web UI, and only the HTTP API is
# used (UI pages answer 404/500; /api/v1/... works). So the build is checked by starting the
# server on 127.0.0.1 with a one-line config and asking /api/v1/status/buildinfo.
prometheus_release() {
  [[ "$1" =~ ^v0\.([0-9]+)([0-9][0-9])\.([0-9]+)$ ]] || die "PROMETHEUS_VERSION must look like v0.3XY.Z, got $1"
  echo "${BASH_REMATCH[1]}.$((10#${BASH_REMATCH[2]})).${BASH_REMATCH[3]}"
}

# prometheus_smoke DIR RELEASE: run DIR/prometheus for a moment, require RELEASE in buildinfo.
prometheus_smoke() {
  local dir="$1" release="$2" tmp port pid out="" rc=1
  tmp="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))"
  printf 'global:\n  scrape_interval: 1m\n' >"$tmp/prometheus.yml"
  (cd "$tmp" && exec "$dir/prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$port" >"$tmp/log" 2>&1) &
  pid=$!
  for _ in $(seq 1 60); do
    if out="$(curl -fsS "http://127.0.0.1:$port/api/v1/status/buildinfo" 2>/dev/null)"; then
      rc=0
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if ((rc != 0)) || [[ "$out" != *"\"version\":\"$release\""* ]]; then
    echo "prometheus did not answer /api/v1/status/buildinfo with version $release on 127.0.0.1:$port: ${out:-no answer}" >&2
    tail -n 20 "$tmp/log" >&2
    rm -rf "$tmp"
    return 1
  fi
  log "  prometheus on 127.0.0.1:$port: $out"
  rm -rf "$tmp"
}

build_prometheus() {
  local ver="$PROMETHEUS_VERSION" dir="$BIN_ROOT/prometheus-$PROMETHEUS_VERSION"
  local stamp="prometheus $PROMETHEUS_VERSION $GO_VERSION" release
  release="$(prometheus_release "$ver")"
  mkdir -p "$dir"
  local b pv="github.com/prometheus/common/version"
  local ldflags="-s -w -X $pv.Version=$release -X $pv.Revision=module-$ver -X $pv.Branch=module"
  ldflags+=" -X $pv.BuildUser=samsa-e2e -X $pv.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
  for b in prometheus promtool; do
    if stamp_ok "$dir" "$b" "$stamp" && [[ "$("$dir/$b" --version 2>/dev/null)" == *"$b, version $release "* ]]; then
      log "$b $release ($ver): cached in $dir, skipping"
      SKIPPED+=("$b")
    else
      log "$b $release ($ver): building"
      local t0=$SECONDS
      (cd "$WORK_ROOT" && GOBIN="$dir" CGO_ENABLED=0 gobuild install -trimpath -tags netgo \
        -ldflags "$ldflags" "github.com/prometheus/prometheus/cmd/$b@$ver")
      verify "$b" "$b, version $release " "$dir/$b" --version || die "$b failed its version check"
      if [[ "$b" == prometheus ]]; then
        prometheus_smoke "$dir" "$release" || die "prometheus failed to start"
      fi
      echo "$stamp" >"$dir/.stamp-$b"
      local dt=$((SECONDS - t0))
      log "$b $release ($ver): built in ${dt}s"
      record "$b" "$ver" "$dt"
      BUILT+=("$b ${dt}s")
    fi
    link "$b" "$dir"
  done
}

# ---------------------------------------------------------------------------------------------
components=("$@")
((${#components[@]})) || components=(etcd kubernetes helm coredns prometheus)
log "go $GO_VERSION; cache $BIN_ROOT; links in $LINK_DIR"
log "versions: kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION, coredns $COREDNS_VERSION, provisioner library $PROVISIONER_LIB_VERSION, prometheus $PROMETHEUS_VERSION"
for c in "${components[@]}"; do
  case "$c" in
    etcd) build_etcd ;;
    kubernetes | k8s) build_kubernetes ;;
    helm) build_helm ;;
    coredns) build_coredns ;;
    hostpath-provisioner) build_provisioner ;;
    prometheus | promtool) build_prometheus ;;
    *) die "unknown component '$c' (want: etcd kubernetes helm coredns prometheus hostpath-provisioner)" ;;
  esac
done

log "done in $((SECONDS - TOTAL_START))s; built: ${BUILT[*]:-nothing}; cached: ${SKIPPED[*]:-nothing}"
log "binaries: $(du -sh "$BIN_ROOT" | cut -f1) in $BIN_ROOT"
