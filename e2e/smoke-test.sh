#!/usr/bin/env bash
# Smoke test of a cluster brought up by `e2e/cluster up [--node]` (or any KUBECONFIG): the API
# answers, namespaces exist, a PVC binds through the default StorageClass; when a Ready node
# exists, also a pod runs, cluster DNS resolves, the kubernetes Service IP and a headless
# StatefulSet's pod names are reachable from a pod, and kubectl logs/exec work.
#
#   e2e/smoke-test.sh            uses $KUBECONFIG, else the e2e/cluster admin kubeconfig
#
# Everything it creates lives in one namespace, deleted at the end.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${SAMSA_E2E_BIN:-$E2E_DIR/.bin}"
export KUBECONFIG="${KUBECONFIG:-$("$E2E_DIR/cluster" kubeconfig)}"
K=("$BIN/kubectl")
command -v "${K[0]}" >/dev/null || K=(kubectl)
NS="samsa-smoke-$$"
BUSYBOX_IMAGE="samsa.local/e2e/busybox:1"
FAILED=0

pass() { printf 'PASS  %s\n' "$*"; }
fail() {
  printf 'FAIL  %s\n' "$*"
  FAILED=1
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { "${K[@]}" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

# check NAME CMD...: run CMD, report PASS/FAIL with its output on failure.
check() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then pass "$name"; else fail "$name: $out"; fi
}

check "apiserver /readyz" "${K[@]}" get --raw /readyz
check "server version is v1.34" bash -c "'${K[0]}' version -o json | grep -q '\"gitVersion\": \"v1.34'"
check "kube-system namespace" "${K[@]}" get namespace kube-system
"${K[@]}" create namespace "$NS" >/dev/null
check "default StorageClass" bash -c "'${K[0]}' get storageclass -o jsonpath='{range .items[*]}{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}{\"\\n\"}{end}' | grep -qx true"

"${K[@]}" -n "$NS" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: smoke}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
EOF
check "PVC binds" "${K[@]}" -n "$NS" wait --for=jsonpath='{.status.phase}'=Bound pvc/smoke --timeout=60s
check "default ServiceAccount" "${K[@]}" -n "$NS" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout=30s

ready_nodes="$("${K[@]}" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)"
if ((ready_nodes == 0)); then
  echo "SKIP  pod checks: no Ready node (start one with: e2e/cluster up --node)"
  exit "$FAILED"
fi

# A FROM-scratch busybox image, when the node is ours and busybox is installed.
ctr_sock="${SAMSA_E2E_STATE:-/var/tmp/samsa-e2e}/containerd/containerd.sock"
if [[ -S "$ctr_sock" ]] && ! ctr --address "$ctr_sock" -n k8s.io images ls -q | grep -qx "$BUSYBOX_IMAGE"; then
  [[ -x /bin/busybox ]] || { echo "SKIP  pod checks: /bin/busybox missing (apt-get install busybox-static)"; exit "$FAILED"; }
  tmp="$(mktemp -d)"
  "$E2E_DIR/mkimage" "$BUSYBOX_IMAGE" "$tmp/busybox.tar" /bin/busybox /bin/busybox=/bin/busybox >/dev/null
  ctr --address "$ctr_sock" -n k8s.io images import "$tmp/busybox.tar" >/dev/null
  rm -rf "$tmp"
fi

"${K[@]}" -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $BUSYBOX_IMAGE
        imagePullPolicy: Never
        command: ["/bin/busybox", "sh", "-c", "hostname > /data/who; exec /bin/busybox httpd -f -p 8080 -h /data"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 10Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $BUSYBOX_IMAGE
    imagePullPolicy: Never
    command: ["/bin/busybox", "sh", "-c", "echo client-started; exec /bin/busybox sleep 3600"]
EOF
check "client pod Ready" "${K[@]}" -n "$NS" wait --for=condition=Ready pod/client --timeout=90s
check "StatefulSet 2/2 ready" "${K[@]}" -n "$NS" rollout status statefulset/web --timeout=120s
check "kubectl logs" bash -c "'${K[0]}' -n '$NS' logs client | grep -qx client-started"
check "kubectl exec" "${K[@]}" -n "$NS" exec client -- /bin/busybox true
check "DNS: kubernetes.default" "${K[@]}" -n "$NS" exec client -- /bin/busybox nslookup kubernetes.default.svc.cluster.local
# shellcheck disable=SC2016 # expanded inside the pod
check "kubernetes Service IP reachable" "${K[@]}" -n "$NS" exec client -- /bin/busybox sh -c \
  'ip=$(/bin/busybox nslookup kubernetes.default.svc.cluster.local | /bin/busybox awk "/^Address: /{print \$2}" | /bin/busybox tail -1); echo | /bin/busybox nc -w 3 "$ip" 443'
check "headless StatefulSet pod by name" bash -c \
  "'${K[0]}' -n '$NS' exec client -- /bin/busybox wget -qO- http://web-1.web.$NS.svc.cluster.local:8080/who | grep -qx web-1"
exit "$FAILED"
