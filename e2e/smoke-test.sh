#!/usr/bin/env bash
# Smoke e2e test of a Kubernetes cluster: the one `e2e/cluster up --node` starts, a kind
# cluster (e2e/kind.sh), or any other kubeconfig. In a throwaway namespace it runs a 3-replica
# StatefulSet of the test image (e2e/probe, built by e2e/build-test-image.sh) with a headless
# Service, a ClusterIP Service and one PVC per pod, then checks:
#   - the pods resolve each other by DNS (<pod>.<headless-svc>, short and fully qualified) to
#     their pod IPs, and reach each other over TCP (the reply names the pod that answered);
#   - a pod reaches the apiserver through the kubernetes Service (as an operator will);
#   - a ClusterIP Service routes to the StatefulSet's pods, more than one of them;
#   - a deleted pod comes back with the same PVC: a token written to web-1's volume is read
#     back after web-1 is deleted and recreated, and the PVC's UID has not changed; the
#     recreated pod is reachable again under its DNS name.
# Each check prints PASS or FAIL; on any failure the script prints diagnostics (pods, describe,
# events, the node's logs when the cluster is e2e/cluster's) and exits 1.
#
#   e2e/smoke-test.sh        uses $KUBECONFIG, else the e2e/cluster admin kubeconfig
#
# Environment:
#   SAMSA_E2E_TEST_IMAGE   test image (default samsa.local/e2e/probe:1); it must already be on
#                          the nodes (e2e/cluster load-images, kind load image-archive)
#   SAMSA_E2E_PULL_POLICY  imagePullPolicy of the test pods (default Never)
#   SAMSA_E2E_EXPECT_K8S   if set (e.g. v1.34.), the server's gitVersion must start with it
#   SAMSA_E2E_WAIT         seconds to wait for the StatefulSet and the recreated pod (default 180)
#   SAMSA_E2E_NODE_LOGS    directory with kubelet.log, containerd.log... for the diagnostics
#                          (default: e2e/cluster's logs when KUBECONFIG is e2e/cluster's)
#   SAMSA_E2E_RESULTS      if set, "PASSED FAILED" counts are written to this file
#   SAMSA_E2E_KEEP_NS=1    keep the namespace afterwards
set -uo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${SAMSA_E2E_BIN:-$E2E_DIR/.bin}"
OWN_KUBECONFIG="$("$E2E_DIR/cluster" kubeconfig)"
export KUBECONFIG="${KUBECONFIG:-$OWN_KUBECONFIG}"
if [[ -z "${SAMSA_E2E_NODE_LOGS:-}" && "$KUBECONFIG" == "$OWN_KUBECONFIG" ]]; then
  SAMSA_E2E_NODE_LOGS="${SAMSA_E2E_STATE:-/var/tmp/samsa-e2e}/logs"
fi
K=("$BIN/kubectl")
[[ -x "${K[0]}" ]] || K=(kubectl)
command -v "${K[0]}" >/dev/null || { echo "smoke-test: no kubectl (run e2e/build-binaries.sh kubernetes)" >&2; exit 1; }

IMAGE="${SAMSA_E2E_TEST_IMAGE:-samsa.local/e2e/probe:1}"
PULL="${SAMSA_E2E_PULL_POLICY:-Never}"
WAIT="${SAMSA_E2E_WAIT:-180}"
NS="samsa-smoke-$(date +%H%M%S)-$$"
TOKEN="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

CHECKS_TAG=smoke
CHECKS_FAIL_LINES=30
CHECKS_INTERVAL=1
# shellcheck source=checks.sh
. "$E2E_DIR/checks.sh"

# Every kubectl call is bounded (rollout status waits up to WAIT seconds itself).
KTIMEOUT=$((WAIT + 60))
k() { timeout "$KTIMEOUT" "${K[@]}" "$@"; }
kn() { timeout "$KTIMEOUT" "${K[@]}" -n "$NS" "$@"; }
# pexec POD ARGS...: run the probe in POD.
pexec() {
  local pod="$1"
  shift
  kn exec "$pod" -c probe -- /probe "$@"
}

DIAGNOSED=0
diagnostics() {
  ((DIAGNOSED)) && return
  DIAGNOSED=1
  echo "---------------- diagnostics (namespace $NS) ----------------"
  local cmd
  for cmd in "get nodes -o wide" "describe nodes" "-n $NS get statefulsets,pods,services,endpointslices,pvc -o wide" "get pv" \
    "-n $NS describe pods" "-n $NS get events --sort-by=.lastTimestamp" "-n kube-system get pods -o wide"; do
    echo "\$ kubectl $cmd"
    # shellcheck disable=SC2086 # cmd is a list of words
    k $cmd 2>&1 | tail -n 150
  done
  local f
  if [[ -n "${SAMSA_E2E_NODE_LOGS:-}" && -d "$SAMSA_E2E_NODE_LOGS" ]]; then
    for f in kubelet containerd kube-proxy kube-controller-manager kube-scheduler; do
      [[ -f "$SAMSA_E2E_NODE_LOGS/$f.log" ]] || continue
      echo "\$ tail -n 40 $SAMSA_E2E_NODE_LOGS/$f.log"
      tail -n 40 "$SAMSA_E2E_NODE_LOGS/$f.log"
    done
  fi
  echo "--------------------------------------------------------------"
}

finish() {
  local rc=0
  ((FAILED)) && diagnostics
  if [[ "${SAMSA_E2E_KEEP_NS:-0}" == 1 ]]; then
    say "keeping namespace $NS (SAMSA_E2E_KEEP_NS=1)"
  else
    k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  fi
  report_results || rc=1
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# stop: after a failed check the rest cannot go on without.
stop() {
  say "cannot go on after this failure"
  exit 1
}
# fatal NAME DETAIL: a failed step the rest cannot go on without.
fatal() {
  fail "$1" "${2:-}"
  stop
}

# ---------------------------------------------------------------------------------------------
# The cluster
server_version() {
  local v
  v="$(k version -o json | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": "\([^"]*\)".*/\1/p')"
  [[ -n "$v" ]] || return 1
  if [[ -n "${SAMSA_E2E_EXPECT_K8S:-}" && "$v" != "$SAMSA_E2E_EXPECT_K8S"* ]]; then
    echo "server is $v, expected $SAMSA_E2E_EXPECT_K8S*"
    return 1
  fi
  echo "$v"
}
ready_nodes() {
  local n
  n="$(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '=True$')"
  ((n > 0)) || { k get nodes; return 1; }
  # A node under pressure is Ready but schedules nothing: name the condition instead of timing out.
  local pressure
  pressure="$(k get nodes -o jsonpath='{range .items[*]}{range .status.conditions[*]}{.type}={.status}{"\n"}{end}{end}' |
    grep -E '^(Disk|Memory|PID)Pressure=True$' || true)"
  [[ -z "$pressure" ]] || { echo "node condition $pressure (see df -h; the kubelet evicts below 512Mi free)"; return 1; }
  echo "$n Ready"
}
default_storage_class() {
  k get storageclass -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}{"\n"}{end}' | awk '$2 == "true" {print $1; found=1} END {exit !found}'
}

say "KUBECONFIG=$KUBECONFIG, namespace $NS, image $IMAGE (imagePullPolicy $PULL)"
check "apiserver /readyz" k get --raw /readyz || stop
check "server version" server_version
check "a Ready node" ready_nodes || stop
check "default StorageClass" default_storage_class

# ---------------------------------------------------------------------------------------------
# The StatefulSet
out="$(k create namespace "$NS" 2>&1)" || fatal "create namespace $NS" "$out"
out="$(kn apply -f - 2>&1 <<EOF
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: probe, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: ClusterIP
  selector: {app: web}
  ports: [{name: probe, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      automountServiceAccountToken: false
      enableServiceLinks: false
      containers:
      - name: probe
        image: $IMAGE
        imagePullPolicy: $PULL
        args: [serve, -addr, ":8080"]
        ports: [{name: probe, containerPort: 8080}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 2
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 10Mi}}
EOF
)" || fatal "apply the StatefulSet and Services" "$out"

check "StatefulSet web: 3/3 pods Ready within ${WAIT}s" kn rollout status statefulset/web --timeout="${WAIT}s" || stop

pvcs_bound() {
  local i phase claim
  for i in 0 1 2; do
    phase="$(kn get pvc "data-web-$i" -o jsonpath='{.status.phase}')"
    [[ "$phase" == Bound ]] || { echo "data-web-$i is '$phase'"; return 1; }
    claim="$(kn get pod "web-$i" -o jsonpath='{.spec.volumes[?(@.name=="data")].persistentVolumeClaim.claimName}')"
    [[ "$claim" == "data-web-$i" ]] || { echo "web-$i mounts claim '$claim'"; return 1; }
  done
  echo "data-web-0..2 Bound, each mounted by its pod"
}
check "PVCs of the StatefulSet" pvcs_bound

pod_ip() { kn get pod "$1" -o jsonpath='{.status.podIP}'; }
IP0="$(pod_ip web-0)" IP1="$(pod_ip web-1)" IP2="$(pod_ip web-2)"
say "pod IPs: web-0 $IP0, web-1 $IP1, web-2 $IP2"

# ---------------------------------------------------------------------------------------------
# DNS and TCP between the pods
# resolves FROM NAME WANT_IP
resolves() {
  local got
  got="$(pexec "$1" lookup "$2")" || { echo "$got"; return 1; }
  [[ "$got" == "$3" ]] || { echo "$2 resolved to '$got', expected $3"; return 1; }
  echo "$2 -> $got"
}
eventually 60 "DNS: web-0 resolves web-1.web to web-1's pod IP" resolves web-0 web-1.web "$IP1"
eventually 60 "DNS: web-0 resolves web-2.web to web-2's pod IP" resolves web-0 web-2.web "$IP2"
eventually 60 "DNS: web-2 resolves web-0.web.$NS.svc.cluster.local" resolves web-2 "web-0.web.$NS.svc.cluster.local" "$IP0"

# replies FROM ADDR WANT_POD MSG: a connection from FROM to ADDR is answered by WANT_POD.
replies() {
  local got
  got="$(pexec "$1" dial "$2" "$4")" || { echo "$got"; return 1; }
  [[ "$got" == "$3 $4" ]] || { echo "$2 replied '$got', expected '$3 $4'"; return 1; }
  echo "$1 -> $2: '$got'"
}
eventually 30 "TCP: web-0 -> web-1.web:8080 answered by web-1" replies web-0 web-1.web:8080 web-1 "ping-$TOKEN"
eventually 30 "TCP: web-0 -> web-2.web:8080 answered by web-2" replies web-0 web-2.web:8080 web-2 "ping-$TOKEN"
eventually 30 "TCP: web-2 -> web-0.web:8080 answered by web-0" replies web-2 web-0.web:8080 web-0 "ping-$TOKEN"
# api_from_pod POD: the kubernetes Service, which an operator in a pod talks to, answers.
api_from_pod() {
  local out v
  out="$(pexec "$1" get https://kubernetes.default.svc/version)" || { echo "$out"; return 1; }
  case "$(head -n 1 <<<"$out")" in
    "HTTP 200")
      v="$(sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' <<<"$out")"
      [[ -n "$v" ]] || { echo "$out"; return 1; }
      echo "HTTP 200, gitVersion $v"
      ;;
    "HTTP 401" | "HTTP 403") echo "the apiserver answered $(head -n 1 <<<"$out") (anonymous requests refused)" ;;
    *)
      echo "$out"
      return 1
      ;;
  esac
}
eventually 30 "pod -> kubernetes Service: web-0 GETs https://kubernetes.default.svc/version" api_from_pod web-0
check "kubectl logs: web-1 logged the connection it served" \
  bash -c "'${K[0]}' -n '$NS' logs web-1 | grep -F 'ping-$TOKEN' | head -n 1"

# ---------------------------------------------------------------------------------------------
# The ClusterIP Service
CLUSTER_IP="$(kn get service web-lb -o jsonpath='{.spec.clusterIP}')"
# through_service FROM ADDR N: N connections to ADDR are all answered by the StatefulSet's pods,
# and by more than one of them.
through_service() {
  local from="$1" addr="$2" n="$3" out bad who
  out="$(pexec "$from" dial -n "$n" "$addr" "svc-$TOKEN")" || { echo "$out"; return 1; }
  bad="$(grep -Ev "^web-[012] svc-$TOKEN\$" <<<"$out")"
  [[ -z "$bad" ]] || { echo "unexpected replies: $bad"; return 1; }
  who="$(awk '{print $1}' <<<"$out" | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"
  (($(awk '{print $1}' <<<"$out" | sort -u | wc -l) > 1)) || { echo "all $n replies came from $who"; return 1; }
  echo "$n/$n replies, from $who"
}
if [[ "$CLUSTER_IP" =~ ^[0-9a-f.:]+$ ]]; then
  pass "Service web-lb has ClusterIP $CLUSTER_IP"
  eventually 30 "Service: web-lb:80 (by DNS name) from web-0 reaches the StatefulSet's pods" through_service web-0 web-lb:80 20
  eventually 30 "Service: $CLUSTER_IP:80 from web-1 reaches the StatefulSet's pods" through_service web-1 "$CLUSTER_IP:80" 20
else
  fail "Service web-lb has a ClusterIP" "got '$CLUSTER_IP'"
fi

# ---------------------------------------------------------------------------------------------
# A deleted pod comes back with the same PVC
OLD_POD_UID="$(kn get pod web-1 -o jsonpath='{.metadata.uid}')"
OLD_PVC_UID="$(kn get pvc data-web-1 -o jsonpath='{.metadata.uid}')"
check "write token $TOKEN into web-1's PVC" pexec web-1 write /data/token "$TOKEN"
out="$(kn delete pod web-1 --wait=false 2>&1)" || fail "delete pod web-1" "$out"
say "deleted pod web-1 (uid $OLD_POD_UID)"

recreated() {
  local uid ready
  uid="$(kn get pod web-1 -o jsonpath='{.metadata.uid}' 2>/dev/null)"
  [[ -n "$uid" && "$uid" != "$OLD_POD_UID" ]] || { echo "web-1 is still the old pod ($uid)"; return 1; }
  ready="$(kn get pod web-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
  [[ "$ready" == True ]] || { echo "new web-1 ($uid) is not Ready"; return 1; }
  echo "new uid $uid"
}
eventually "$WAIT" "web-1 recreated and Ready" recreated
same_pvc() {
  local uid claim
  uid="$(kn get pvc data-web-1 -o jsonpath='{.metadata.uid}')"
  [[ "$uid" == "$OLD_PVC_UID" ]] || { echo "PVC data-web-1 is now $uid, was $OLD_PVC_UID"; return 1; }
  claim="$(kn get pod web-1 -o jsonpath='{.spec.volumes[?(@.name=="data")].persistentVolumeClaim.claimName}')"
  [[ "$claim" == data-web-1 ]] || { echo "new web-1 mounts claim '$claim'"; return 1; }
  echo "data-web-1 uid $uid unchanged, mounted by the new web-1"
}
check "recreated web-1 has the same PVC" same_pvc
token_back() {
  local got
  got="$(pexec web-1 cat /data/token)" || { echo "$got"; return 1; }
  [[ "$got" == "$TOKEN" ]] || { echo "read '$got', expected '$TOKEN'"; return 1; }
  echo "read $got"
}
check "token read back from the recreated web-1's PVC" token_back
NEW_IP1="$(pod_ip web-1)"
eventually 60 "DNS: web-0 resolves web-1.web to the new pod's IP" resolves web-0 web-1.web "$NEW_IP1"
eventually 30 "TCP: web-0 -> recreated web-1.web:8080 answered by web-1" replies web-0 web-1.web:8080 web-1 "back-$TOKEN"
