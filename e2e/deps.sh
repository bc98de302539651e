#!/usr/bin/env bash
# Install the Debian packages the e2e cluster and its node need. Idempotent: when every package
# is installed it only checks (well under a second); otherwise it runs `apt-get update` once and
# installs what is missing, without reading stdin (CI has none).
#
#   e2e/deps.sh            install what is missing
#   e2e/deps.sh --check    only report; exit 1 if something is missing
#
# Go is not installed here: the machine provides it (/usr/local/go); Debian's is too old for
# the pinned Kubernetes.
set -euo pipefail

# package: what the e2e scripts use from it
#   containerd                   containerd, containerd-shim-runc-v2, ctr (the node's runtime)
#   runc                         the OCI runtime containerd starts containers with
#   containernetworking-plugins  bridge, host-local, portmap, loopback in /usr/lib/cni
#   iptables                     kube-proxy, the kubelet, CNI masquerading, `cluster down` cleanup
#   conntrack                    kube-proxy clears stale UDP conntrack entries with it
#   openssl                      the cluster PKI
#   curl                         health checks of etcd, controller-manager, scheduler, kube-proxy
#   iproute2                     ip: the advertise address, bridge cleanup
#   kmod                         modprobe br_netfilter, overlay
#   procps                       sysctl
#   ca-certificates              go's downloads from the module proxy
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack openssl curl iproute2 kmod procps ca-certificates)

log() { printf '[deps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

installed() { [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == "ii"* ]]; }

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [[ "${1:-}" == --check ]]; then
  if ((${#missing[@]})); then
    log "missing: ${missing[*]}"
    exit 1
  fi
  log "all installed: ${PACKAGES[*]}"
  exit 0
fi

if ((${#missing[@]})); then
  command -v apt-get >/dev/null || { log "no apt-get: install ${missing[*]} by hand"; exit 1; }
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { log "need root to install ${missing[*]}"; exit 1; }
    SUDO=(sudo -n)
  fi
  apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
  log "apt-get update (missing: ${missing[*]})"
  "${apt[@]}" update -qq </dev/null
  log "apt-get install ${missing[*]}"
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
  for p in "${missing[@]}"; do
    installed "$p" || { log "$p is still not installed"; exit 1; }
  done
  log "installed: ${missing[*]}"
fi

# Debian's containerd package may start the system containerd where systemd runs; ours uses its
# own socket, root and state (e2e/cluster), so the two do not meet.
if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]]; then
  log "go is not installed (the e2e scripts build Kubernetes, etcd and the test image with it)"
  exit 1
fi
log "ok: ${PACKAGES[*]}; containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}')"
