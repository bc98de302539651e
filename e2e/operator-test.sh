#!/usr/bin/env bash
# The operator's e2e test, on the cluster `e2e/cluster up --node` starts, a kind cluster
# (e2e/kind.sh) or any other kubeconfig whose nodes have the images. As a user would:
#   - charts/check.sh (chart CRDs = crds/, helm lint, helm template, the Grafana dashboards
#     up to date with their generator, whose venv `scripts/test-deps.sh dashboards` makes),
#     then the chart's rendered objects and the examples pass `kubectl apply --dry-run=server`;
#   - `helm install` charts/samsa-operator into namespace samsa-op-<time>-<pid>; the operator's
#     Deployment becomes Available and its pod holds the leader-election Lease;
#   - examples/kafkacluster.yaml into namespace samsa-kafka-<time>-<pid>: the KafkaCluster
#     becomes Ready (the seconds from `kubectl apply` to Ready are printed), 3 broker pods Ready,
#     `kubectl get kc` columns; the cluster is rack-aware (spec.rack, topology.kubernetes.io/zone;
#     nodes without the label get one for the test): each broker's rack in its status and pod
#     annotation is its node's zone, and a client's Metadata shows every broker with its rack;
#   - examples/kafkatopic.yaml: Ready with a leader for every partition in status.partitions;
#     a Kafka client in a pod (e2e/kclient, franz-go, image samsa.local/e2e/kclient:1) sees on
#     the brokers the requested partitions, replication factor and config; it produces N
#     records through the bootstrap Service and consumes exactly them back;
#   - partitions grow in the CR -> the brokers have the new count; a config change in the CR
#     -> the brokers have the new value; a dynamic broker setting in the KafkaCluster
#     (message.max.bytes) reaches the running brokers without a restart;
#   - invalid CRs are refused by `kubectl apply` with a message naming the field (partitions
#     decrease, replication factor 0, min.insync.replicas not below the replication factor,
#     brokers 0), and those only the operator can judge get Ready=False naming it (replication
#     factor above the brokers, a config the brokers do not know);
#   - a KafkaTopic's explicit assignment change and replication-factor change (2 -> 3) are
#     carried out by reassignment: the brokers list exactly the replicas expected, every ISR
#     whole, the topic Ready again, and every record produced before is read back once;
#   - deleting the KafkaTopic deletes the topic on the brokers;
#   - the operator's per-reconcile latency from its /metrics (through the apiserver's service
#     proxy) is printed per kind, and its log shows no request refused by RBAC;
#   - deleting the KafkaCluster removes what it became;
#   - e2e/roll-test.sh, with the same operator: rolling restarts of a KafkaCluster of its own
#     under load, then its scale-up 3 -> 4 (replicas spread onto the new broker) and scale-down
#     4 -> 3 (the broker drained first) under the same load (SAMSA_E2E_ROLL=0 leaves it out);
#   - `helm uninstall` leaves nothing of the
#     release (Deployment, pods, ServiceAccount, roles, bindings, Service, Lease). The CRDs stay,
#     as Helm keeps a chart's crds/ by design; the test removes them at the end if it installed
#     them.
# Each check prints PASS or FAIL; on a failure the script prints diagnostics (operator log,
# resources, events, broker logs) and exits 1. Cleanup runs from an EXIT trap.
#
#   e2e/operator-test.sh        uses $KUBECONFIG, else the e2e/cluster admin kubeconfig
#
# Needs on the nodes: samsa.local/samsa-operator:0.1.0 and samsa.local/samsa-broker:0.1.0
# (`make images`, then `e2e/cluster load-images` or `kind load image-archive`) and
# samsa.local/e2e/kclient:1 (e2e/build-test-image.sh); helm and kubectl in e2e/.bin or on PATH.
#
# Environment:
#   SAMSA_E2E_KCLIENT_IMAGE  Kafka client image (default samsa.local/e2e/kclient:1)
#   SAMSA_E2E_PULL_POLICY    imagePullPolicy of the client pod (default Never)
#   SAMSA_E2E_HELM_SET       extra `--set` arguments of helm install, space-separated (e.g.
#                            "image.repository=my.registry/samsa-operator")
#   SAMSA_E2E_WAIT           seconds to wait for the operator, the KafkaCluster and the
#                            deletions (default 300)
#   SAMSA_E2E_RECORDS        records produced and consumed (default 500)
#   SAMSA_E2E_NODE_LOGS      directory with kubelet.log... for the diagnostics (default:
#                            e2e/cluster's logs when KUBECONFIG is e2e/cluster's)
#   SAMSA_E2E_RESULTS        if set, "PASSED FAILED" counts are written to this file
#   SAMSA_E2E_KEEP_NS=1      keep the namespaces, the release and the CRs afterwards
#   SAMSA_E2E_WATCH_NAMESPACE=1  install with watchNamespace set to the cluster namespace: the
#                            operator watches only it, with a Role there instead of a ClusterRole
#                            (roll-test.sh is then left out: its cluster lives in another namespace)
#   SAMSA_E2E_ROLL=0         leave out e2e/roll-test.sh (default 1; its SAMSA_E2E_ROLL_* settings
#                            pass through)
set -uo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$E2E_DIR")"
BIN="${SAMSA_E2E_BIN:-$E2E_DIR/.bin}"
OWN_KUBECONFIG="$("$E2E_DIR/cluster" kubeconfig)"
export KUBECONFIG="${KUBECONFIG:-$OWN_KUBECONFIG}"
if [[ -z "${SAMSA_E2E_NODE_LOGS:-}" && "$KUBECONFIG" == "$OWN_KUBECONFIG" ]]; then
  SAMSA_E2E_NODE_LOGS="${SAMSA_E2E_STATE:-/var/tmp/samsa-e2e}/logs"
fi
K=("$BIN/kubectl")
[[ -x "${K[0]}" ]] || K=(kubectl)
command -v "${K[0]}" >/dev/null || { echo "operator-test: no kubectl (e2e/build-binaries.sh kubernetes)" >&2; exit 1; }
HELM="$BIN/helm"
[[ -x "$HELM" ]] || HELM="$(command -v helm || true)"
[[ -n "$HELM" ]] || { echo "operator-test: no helm (e2e/build-binaries.sh helm)" >&2; exit 1; }
export HELM

CHART="$ROOT/charts/samsa-operator"
EXAMPLES="$ROOT/examples"
CLIENT_IMAGE="${SAMSA_E2E_KCLIENT_IMAGE:-samsa.local/e2e/kclient:1}"
PULL="${SAMSA_E2E_PULL_POLICY:-Never}"
WAIT="${SAMSA_E2E_WAIT:-300}"
RECORDS="${SAMSA_E2E_RECORDS:-500}"
STAMP="$(date +%H%M%S)-$$"
OP_NS="samsa-op-$STAMP"
NS="samsa-kafka-$STAMP"
RELEASE=samsa-operator     # the chart's objects are then plain "samsa-operator"
FULLNAME=samsa-operator
CLUSTER=demo               # examples/kafkacluster.yaml
TOPIC=orders               # examples/kafkatopic.yaml
BOOTSTRAP="$CLUSTER-bootstrap.$NS.svc:9092"
TOKEN="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
CRDS_EXISTED=0
INSTALLED=0
TMP="$(mktemp -d)"
CHECKS_TAG=operator
CHECKS_FAIL_LINES=40
CHECKS_INTERVAL=2
# shellcheck source=checks.sh
. "$E2E_DIR/checks.sh"

# Every kubectl call is bounded (kubectl wait/rollout wait up to WAIT seconds themselves).
KTIMEOUT=$((WAIT + 60))
k() { timeout "$KTIMEOUT" "${K[@]}" "$@"; }
kn() { timeout "$KTIMEOUT" "${K[@]}" -n "$NS" "$@"; }
ko() { timeout "$KTIMEOUT" "${K[@]}" -n "$OP_NS" "$@"; }
# kc ARGS...: the Kafka client in the client pod, against the bootstrap Service.
kc() {
  local cmd="$1"
  shift
  kn exec kclient -c kclient -- /kclient "$cmd" -b "$BOOTSTRAP" "$@"
}

DIAGNOSED=0
diagnostics() {
  ((DIAGNOSED)) && return
  DIAGNOSED=1
  echo "---------------- diagnostics (namespaces $OP_NS, $NS) ----------------"
  local cmd
  for cmd in "-n $OP_NS get all,lease,sa,role,rolebinding -o wide" "-n $OP_NS describe pods" \
    "-n $OP_NS logs deployment/$FULLNAME --tail=80" \
    "-n $NS get kafkaclusters,kafkatopics,statefulsets,pods,services,pvc,configmaps,pdb -o wide" \
    "-n $NS get kafkaclusters,kafkatopics -o yaml" "-n $NS describe pods" \
    "-n $NS logs $CLUSTER-0 --tail=40" "-n $NS logs $CLUSTER-1 --tail=40" \
    "-n $NS get events --sort-by=.lastTimestamp" "-n $OP_NS get events --sort-by=.lastTimestamp"; do
    echo "\$ kubectl $cmd"
    # shellcheck disable=SC2086 # cmd is a list of words
    k $cmd 2>&1 | tail -n 120
  done
  local f
  if [[ -n "${SAMSA_E2E_NODE_LOGS:-}" && -d "$SAMSA_E2E_NODE_LOGS" ]]; then
    for f in kubelet containerd; do
      [[ -f "$SAMSA_E2E_NODE_LOGS/$f.log" ]] || continue
      echo "\$ tail -n 30 $SAMSA_E2E_NODE_LOGS/$f.log"
      tail -n 30 "$SAMSA_E2E_NODE_LOGS/$f.log"
    done
  fi
  echo "----------------------------------------------------------------------"
}

# Nodes the test gave the rack label (RACK_KEY) it removes again.
LABELED_NODES=()
# Removes what the test made, in the order that lets the operator remove its finalizers.
cleanup() {
  local node
  for node in "${LABELED_NODES[@]}"; do
    k label node "$node" "$RACK_KEY-" >/dev/null 2>&1 || true
  done
  if ((INSTALLED)); then
    k -n "$NS" delete kafkausers --all --wait=true --timeout=60s >/dev/null 2>&1 || true
    k -n "$NS" delete kafkatopics --all --wait=true --timeout=60s >/dev/null 2>&1 || true
    k -n "$NS" delete kafkaclusters --all --wait=true --timeout=60s >/dev/null 2>&1 || true
    timeout 120 "$HELM" uninstall "$RELEASE" -n "$OP_NS" --wait --timeout 90s >/dev/null 2>&1 || true
  fi
  # Without the operator, a KafkaTopic's or KafkaUser's finalizer would hold its namespace forever.
  local kt
  for kt in $(k -n "$NS" get kafkatopics,kafkausers -o name 2>/dev/null); do
    k -n "$NS" patch "$kt" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
  k delete namespace "$NS" "$OP_NS" --wait=false >/dev/null 2>&1 || true
  if ((!CRDS_EXISTED)); then
    k delete crd kafkaclusters.samsa.dev kafkatopics.samsa.dev kafkausers.samsa.dev --wait=false >/dev/null 2>&1 || true
  fi
}

finish() {
  local rc=0
  ((FAILED)) && diagnostics
  if [[ "${SAMSA_E2E_KEEP_NS:-0}" == 1 ]]; then
    say "keeping namespaces $OP_NS and $NS, the release and the CRs (SAMSA_E2E_KEEP_NS=1)"
  else
    cleanup
  fi
  rm -rf "$TMP"
  report_results || rc=1
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

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
# The chart, statically, then against the apiserver
say "KUBECONFIG=$KUBECONFIG, operator namespace $OP_NS, cluster namespace $NS, helm $("$HELM" version --short 2>/dev/null)"
check "apiserver /readyz" k get --raw /readyz || stop
# charts/check.sh regenerates the dashboards with the Grafana Foundation SDK of this venv (a
# fast no-op when cached); when it cannot be made, check.sh's dashboard check fails saying so.
if [[ -z "${SAMSA_DASHBOARD_PYTHON:-}" ]] &&
  out="$("$ROOT/scripts/test-deps.sh" dashboards </dev/null 2>&1)"; then
  SAMSA_DASHBOARD_PYTHON="$(sed -n 's/^SAMSA_DASHBOARD_PYTHON=//p' <<<"$out")"
  export SAMSA_DASHBOARD_PYTHON
fi
if out="$(SAMSA_E2E_RESULTS="$TMP/chart" "$ROOT/charts/check.sh" 2>&1)"; then :; fi
printf '%s\n' "$out" | grep -E '^(PASS|FAIL|      )' || true
read -r p f <"$TMP/chart" 2>/dev/null || { p=0; f=1; }
PASSED=$((PASSED + p))
FAILED=$((FAILED + f))
((f == 0)) || { FAILED_NAMES+=("charts/check.sh"); stop; }

if k get crd kafkaclusters.samsa.dev >/dev/null 2>&1; then
  CRDS_EXISTED=1
  say "the CRDs already exist: helm install keeps them, and the test leaves them"
fi
for ns in "$OP_NS" "$NS"; do
  out="$(k create namespace "$ns" 2>&1)" || fatal "create namespace $ns" "$out"
done
dry_run_chart() {
  "$HELM" template "$RELEASE" "$CHART" --namespace "$OP_NS" >"$TMP/rendered.yaml" || return 1
  k apply --dry-run=server -f "$TMP/rendered.yaml" | awk '{print $1}' | tr '\n' ' '
}
check "the chart's objects pass kubectl apply --dry-run=server" dry_run_chart || stop

# ---------------------------------------------------------------------------------------------
# helm install
helm_args=(install "$RELEASE" "$CHART" --namespace "$OP_NS")
for s in ${SAMSA_E2E_HELM_SET:-}; do helm_args+=(--set "$s"); done
[[ "${SAMSA_E2E_WATCH_NAMESPACE:-0}" == 1 ]] && helm_args+=(--set "watchNamespace=$NS")
start=$SECONDS
out="$(timeout 120 "$HELM" "${helm_args[@]}" 2>&1)" || fatal "helm ${helm_args[*]}" "$out"
INSTALLED=1
pass "helm install $RELEASE -n $OP_NS ($((SECONDS - start))s): $(grep -m1 '^STATUS' <<<"$out")"
check "operator Deployment Available" ko wait "deployment/$FULLNAME" --for=condition=Available --timeout="${WAIT}s" || stop
crds_established() {
  local c
  for c in kafkaclusters.samsa.dev kafkatopics.samsa.dev kafkausers.samsa.dev; do
    [[ "$(k get crd "$c" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" == True ]] ||
      { echo "$c is not Established"; return 1; }
  done
  echo "kafkaclusters.samsa.dev, kafkatopics.samsa.dev, kafkausers.samsa.dev Established"
}
check "CRDs installed by the chart" crds_established || stop
rbac_scope() {
  if [[ "${SAMSA_E2E_WATCH_NAMESPACE:-0}" == 1 ]]; then
    kn get role "$FULLNAME" -o name >/dev/null || return 1
    kn get rolebinding "$FULLNAME" -o name >/dev/null || return 1
    if k get clusterrole "$FULLNAME" -o name 2>/dev/null; then echo "a ClusterRole exists"; return 1; fi
    echo "Role and RoleBinding $FULLNAME in $NS only (watchNamespace=$NS)"
  else
    k get clusterrole "$FULLNAME" -o name >/dev/null || return 1
    k get clusterrolebinding "$FULLNAME" -o name >/dev/null || return 1
    echo "ClusterRole and ClusterRoleBinding $FULLNAME (every namespace)"
  fi
}
check "the operator's RBAC" rbac_scope
lease_held() {
  local holder pod
  holder="$(ko get lease "$FULLNAME" -o jsonpath='{.spec.holderIdentity}')"
  pod="$(ko get pods -l app.kubernetes.io/instance="$RELEASE" -o jsonpath='{.items[0].metadata.name}')"
  [[ -n "$holder" && "$holder" == "$pod" ]] || { echo "Lease $FULLNAME holder '$holder', operator pod '$pod'"; return 1; }
  echo "Lease $FULLNAME held by $holder"
}
eventually 60 "the operator pod leads (Lease holder)" lease_held
check "the operator runs as non-root with a read-only root file system" bash -c \
  "'${K[0]}' -n '$OP_NS' get deployment '$FULLNAME' -o jsonpath='{.spec.template.spec.securityContext.runAsNonRoot} {.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}' | grep -x 'true true'"
check "examples/ pass kubectl apply --dry-run=server" bash -c \
  "'${K[0]}' -n '$NS' apply --dry-run=server -f '$EXAMPLES/kafkacluster.yaml' -f '$EXAMPLES/kafkatopic.yaml' | tr '\n' ' '" || stop

# ---------------------------------------------------------------------------------------------
# The brokers' volumes come from the cluster's default StorageClass.
cp "$EXAMPLES/kafkacluster.yaml" "$TMP/kafkacluster.yaml"

# ---------------------------------------------------------------------------------------------
# The three-broker KafkaCluster, rack-aware: each broker's rack is its node's zone label, which
# the operator copies into the pod for the broker to read (nodes without the label get one here,
# removed at the end).
RACK_KEY=topology.kubernetes.io/zone
RACK=samsa-e2e-zone-a
rack_labels() {
  local node zone
  while read -r node zone; do
    [[ -n "$node" ]] || continue
    if [[ -z "$zone" ]]; then
      k label node "$node" "$RACK_KEY=$RACK" >/dev/null || return 1
      LABELED_NODES+=("$node")
      zone=$RACK
    fi
    echo "node $node: $RACK_KEY=$zone"
  done < <(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.labels.topology\.kubernetes\.io/zone}{"\n"}{end}')
}
check "nodes carry the rack label $RACK_KEY" rack_labels || stop
RACKS="$(k get nodes -o jsonpath='{range .items[*]}{.metadata.labels.topology\.kubernetes\.io/zone}{"\n"}{end}' | sort -u | tr '\n' ' ')"
printf '  rack:\n    topologyKey: %s\n' "$RACK_KEY" >>"$TMP/kafkacluster.yaml"
start=$SECONDS
apply_ts="$(date +%s.%N)"
out="$(kn apply -f "$TMP/kafkacluster.yaml" 2>&1)" || fatal "kubectl apply -f examples/kafkacluster.yaml" "$out"
say "$out"
if out="$(kn wait "kafkacluster/$CLUSTER" --for=condition=Ready --timeout="${WAIT}s" 2>&1)"; then
  READY_SECONDS="$(awk -v a="$apply_ts" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
  pass "KafkaCluster $CLUSTER Ready ${READY_SECONDS}s after kubectl apply"
else
  fatal "KafkaCluster $CLUSTER Ready within ${WAIT}s" "$out
$(kn get kafkacluster "$CLUSTER" -o jsonpath='{.status}' 2>&1)"
fi
brokers_ready() {
  local pods n
  pods="$(kn get pods -l "app.kubernetes.io/name=samsa,app.kubernetes.io/component=broker,app.kubernetes.io/instance=$CLUSTER" \
    -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}')"
  n="$(grep -o '=True' <<<"$pods" | wc -l)"
  [[ "$pods" == *"$CLUSTER-0=True"* && "$pods" == *"$CLUSTER-1=True"* && "$pods" == *"$CLUSTER-2=True"* && $n == 3 ]] ||
    { echo "broker pods: $pods"; return 1; }
  echo "$pods"
}
check "3 broker pods Ready" brokers_ready
# The brokers wrote their data dirs (they are Ready) on volumes the default class provisioned.
broker_volumes() {
  local class claims
  class="$(k get storageclass -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}{"\n"}{end}' | awk '$2 == "true" {print $1; exit}')"
  claims="$(kn get pvc -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {.spec.storageClassName} {.spec.volumeName}{"\n"}{end}')"
  awk -v c="$class" '$2 == "Bound" && $3 == c && $4 != "" {n++} END {exit n != 3 || NR != 3}' <<<"$claims" ||
    { echo "expected 3 claims Bound in the default StorageClass '$class':"; echo "$claims"; return 1; }
  echo "StorageClass $class: $(awk '{printf "%s%s -> %s", sep, $1, $4; sep = ", "}' <<<"$claims")"
}
check "3 broker volumes dynamically provisioned from the default StorageClass" broker_volumes
get_kc() {
  local out
  out="$(kn get kc "$CLUSTER")" || return 1
  printf '%s\n' "$out" >&2
  awk -v c="$CLUSTER" '$1 == c && $2 == "True" && $3 == "3" && $4 == "0.1.0" {ok=1} END {exit !ok}' <<<"$out" ||
    { echo "expected NAME $CLUSTER, READY True, BROKERS 3, VERSION 0.1.0"; return 1; }
  tail -n 1 <<<"$out" | tr -s ' '
}
check "kubectl get kc: READY True, BROKERS 3, VERSION 0.1.0" get_kc
cluster_status() {
  local s
  s="$(kn get kc "$CLUSTER" -o jsonpath='{.status.readyBrokers} {.status.bootstrap} {.status.observedGeneration}/{.metadata.generation}')"
  read -r ready boot gen <<<"$s"
  [[ "$ready" == 3 && "$boot" == "$CLUSTER-bootstrap.$NS.svc:9092" && "${gen%/*}" == "${gen#*/}" ]] ||
    { echo "status: readyBrokers bootstrap observedGeneration/generation = $s"; return 1; }
  echo "readyBrokers 3, bootstrap $boot, observedGeneration $gen"
}
check "KafkaCluster status" cluster_status
# rack_of_brokers: status.brokers[].rack, and the pods' rack annotation, are node labels.
rack_of_brokers() {
  local racks pods
  racks="$(kn get kc "$CLUSTER" -o jsonpath='{range .status.brokers[*]}{.id}={.rack}{" "}{end}')"
  pods="$(kn get pods -l "samsa.dev/cluster=$CLUSTER" -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.annotations.samsa\.dev/rack}{" "}{end}')"
  local id rack n=0
  for pair in $racks; do
    id="${pair%%=*}" rack="${pair#*=}"
    [[ -n "$rack" && " $RACKS" == *" $rack "* && "$pods" == *"$CLUSTER-$id=$rack"* ]] ||
      { echo "status racks: $racks; pod annotations: $pods; node racks: $RACKS"; return 1; }
    n=$((n + 1))
  done
  ((n == 3)) || { echo "status racks: $racks"; return 1; }
  echo "status.brokers racks: $racks(pod annotations agree)"
}
check "each broker's rack is its node's $RACK_KEY (status, pod annotation)" rack_of_brokers
check "broker image from the chart's broker.imageRepository" bash -c \
  "'${K[0]}' -n '$NS' get statefulset '$CLUSTER' -o jsonpath='{.spec.template.spec.containers[0].image}' | grep -x 'samsa.local/samsa-broker:0.1.0'"

# ---------------------------------------------------------------------------------------------
# The Kafka client pod
out="$(kn apply -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata: {name: kclient}
spec:
  terminationGracePeriodSeconds: 2
  automountServiceAccountToken: false
  enableServiceLinks: false
  containers:
  - name: kclient
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [sleep]
EOF
)" || fatal "create the client pod" "$out"
check "client pod Ready" kn wait pod/kclient --for=condition=Ready --timeout=120s || stop
# brokers_racks: Metadata, as a client sees it, gives every broker its rack.
brokers_racks() {
  local out n
  out="$(kn exec kclient -c kclient -- /kclient brokers -b "$BOOTSTRAP" 2>&1)" || { echo "$out"; return 1; }
  n="$(awk '$1 == "broker" && $4 == "rack" && $5 != "-" {n++} END {print n+0}' <<<"$out")"
  [[ "$n" == 3 ]] || { echo "$out"; return 1; }
  awk -v r=" $RACKS" '$1 == "broker" && index(r, " " $5 " ") == 0 {bad=1} END {exit bad}' <<<"$out" ||
    { echo "$out"; return 1; }
  tr '\n' ';' <<<"$out"
}
check "Metadata: 3 brokers, each with its rack" brokers_racks

# ---------------------------------------------------------------------------------------------
# The KafkaTopic
out="$(kn apply -f "$EXAMPLES/kafkatopic.yaml" 2>&1)" || fatal "kubectl apply -f examples/kafkatopic.yaml" "$out"
say "$out"
start=$SECONDS
check "KafkaTopic $TOPIC Ready" kn wait "kafkatopic/$TOPIC" --for=condition=Ready --timeout=120s || stop
say "topic Ready $((SECONDS - start))s after kubectl apply; $(kn get kt "$TOPIC" --no-headers | tr -s ' ')"
# status_partitions WANT: status.partitions lists WANT partitions 0..WANT-1, each with a leader
# among its 3 replicas, and status.observedGeneration is the generation.
status_partitions() {
  local want="$1" rows gen bad
  gen="$(kn get kt "$TOPIC" -o jsonpath='{.status.observedGeneration}/{.metadata.generation}')"
  [[ "${gen%/*}" == "${gen#*/}" ]] || { echo "observedGeneration/generation $gen"; return 1; }
  rows="$(kn get kt "$TOPIC" -o jsonpath='{range .status.partitions[*]}{.partition} {.leader} {.replicas}{"\n"}{end}')"
  bad="$(awk -v want="$want" '
    { n++; seen[$1]=1; gsub(/[\[\]]/, "", $3); r = split($3, reps, ",")
      if (r != 3) print "partition " $1 " has " r " replicas"
      ok = 0; for (i = 1; i <= r; i++) if (reps[i] == $2) ok = 1
      if ($2 < 0 || !ok) print "partition " $1 " leader " $2 " not among its replicas " $3 }
    END { if (n != want) print n " partitions in status, expected " want
          for (p = 0; p < want; p++) if (!seen[p]) print "partition " p " missing" }' <<<"$rows")"
  [[ -z "$bad" ]] || { printf '%s\n' "$bad" "$rows"; return 1; }
  echo "$want partitions, leaders $(awk '{printf "%s%s", sep, $2; sep=","}' <<<"$rows")"
}
eventually 60 "status.partitions: a leader for every partition" status_partitions 6
# on_brokers PARTITIONS KEY=VALUE...: the brokers report PARTITIONS partitions, replication
# factor 3, a leader for each, and each config KEY with VALUE.
on_brokers() {
  local want="$1" out keys kv
  shift
  keys="$(printf '%s\n' "$@" | cut -d= -f1 | paste -sd,)"
  out="$(kc describe -t "$TOPIC" -config "$keys")" || { echo "$out"; return 1; }
  grep -qx "partitions $want" <<<"$out" || { echo "$out"; echo "expected $want partitions"; return 1; }
  grep -qx "replicas 3" <<<"$out" || { echo "$out"; echo "expected replication factor 3"; return 1; }
  if grep -E '^partition [0-9]+ leader -1 ' <<<"$out"; then echo "a partition without leader"; return 1; fi
  for kv in "$@"; do
    grep -qxF "config $kv" <<<"$out" || { echo "$out"; echo "expected config $kv"; return 1; }
  done
  echo "partitions $want, replication factor 3${1:+, $*}"
}
check "on the brokers: the topic as requested" on_brokers 6 min.insync.replicas=2 retention.ms=604800000 \
  retention.bytes=1073741824 cleanup.policy=delete

# ---------------------------------------------------------------------------------------------
# Produce and consume through the bootstrap Service
if out="$(kc produce -t "$TOPIC" -n "$RECORDS" -prefix "rec-$TOKEN" 2>&1)"; then
  pass "produced $RECORDS records through $BOOTSTRAP: $(tail -n 1 <<<"$out")"
else
  fail "produce $RECORDS records through $BOOTSTRAP" "$out"
fi
consumed() {
  local out
  out="$(kc consume -t "$TOPIC" -n "$RECORDS" -timeout 60s)" || { echo "$out"; return 1; }
  grep -v '^consumed ' <<<"$out" >"$TMP/got"
  for ((i = 0; i < RECORDS; i++)); do echo "rec-$TOKEN-$i"; done | sort >"$TMP/want"
  if ! cmp -s "$TMP/got" "$TMP/want"; then
    echo "got $(wc -l <"$TMP/got") records; differences (< got, > expected):"
    diff "$TMP/got" "$TMP/want" | head -n 10
    return 1
  fi
  echo "$RECORDS records back, each exactly once, content as produced"
}
check "consumed them back from every partition" consumed

# ---------------------------------------------------------------------------------------------
# Changes: grow partitions, change a config
sed -e 's/^  partitions: 6$/  partitions: 9/' "$EXAMPLES/kafkatopic.yaml" >"$TMP/topic-9.yaml"
check "kubectl apply: partitions 6 -> 9" kn apply -f "$TMP/topic-9.yaml"
eventually 90 "on the brokers: 9 partitions" on_brokers 9
eventually 60 "status.partitions: 9, a leader for each" status_partitions 9
sed -e 's/retention.ms: "604800000"/retention.ms: "86400000"/' "$TMP/topic-9.yaml" >"$TMP/topic-9-1d.yaml"
check "kubectl apply: retention.ms 604800000 -> 86400000" kn apply -f "$TMP/topic-9-1d.yaml"
eventually 90 "on the brokers: retention.ms=86400000, the other configs unchanged" on_brokers 9 retention.ms=86400000 \
  min.insync.replicas=2 retention.bytes=1073741824 cleanup.policy=delete
check "KafkaTopic still Ready after the changes" kn wait "kafkatopic/$TOPIC" --for=condition=Ready --timeout=60s

# A cluster-wide dynamic broker setting in the KafkaCluster: the running brokers take it at once
# (the topic has no override, so its max.message.bytes follows), and no broker restarts.
broker_uids() {
  kn get pods -l "samsa.dev/cluster=$CLUSTER" -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid}{" "}{end}'
}
UIDS_BEFORE="$(broker_uids)"
check "on the brokers: max.message.bytes is the default 1048588 before" on_brokers 9 max.message.bytes=1048588
check "kubectl patch kc: spec.config message.max.bytes=2000000 (a dynamic setting)" \
  kn patch kc "$CLUSTER" --type merge -p '{"spec":{"config":{"message.max.bytes":"2000000"}}}'
eventually 60 "on the brokers: the topic's max.message.bytes follows, 2000000" on_brokers 9 max.message.bytes=2000000
config_updated() {
  local notes
  notes="$(kn get events --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$CLUSTER,reason=ConfigUpdated" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}')"
  grep -F "applied message.max.bytes to the running brokers without a restart" <<<"$notes" || { echo "ConfigUpdated events: $notes"; return 1; }
}
eventually 30 "a ConfigUpdated event on the KafkaCluster" config_updated
same_brokers() {
  local now
  now="$(broker_uids)"
  [[ "$now" == "$UIDS_BEFORE" && -n "$now" ]] || { echo "broker pods before: $UIDS_BEFORE; now: $now"; return 1; }
  echo "broker pods unchanged: $now"
}
check "no broker restarted for it (same pod uids)" same_brokers

# ---------------------------------------------------------------------------------------------
# Invalid CRs
# refused NAME FIELD FILE: kubectl apply of FILE fails with a message naming FIELD.
refused() {
  local name="$1" field="$2" file="$3" out
  if out="$(kn apply -f "$file" 2>&1)"; then
    fail "refused: $name" "kubectl apply accepted it: $out"
    return 1
  fi
  if grep -qF "$field" <<<"$out"; then
    pass "refused: $name: $(grep -oF "$field" <<<"$out" | head -n 1) in \"$(tr '\n' ' ' <<<"$out" | cut -c1-200)\""
  else
    fail "refused: $name, with a message naming $field" "$out"
  fi
}
sed -e 's/^  partitions: 9$/  partitions: 3/' "$TMP/topic-9-1d.yaml" >"$TMP/bad-decrease.yaml"
refused "partitions 9 -> 3" "spec.partitions" "$TMP/bad-decrease.yaml"
new_topic() { # NAME PARTITIONS RF CONFIG-LINE...
  local name="$1" p="$2" rf="$3" line
  shift 3
  printf 'apiVersion: samsa.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: %s}\nspec:\n  clusterRef: {name: %s}\n  partitions: %s\n  replicationFactor: %s\n  config:\n' \
    "$name" "$CLUSTER" "$p" "$rf"
  for line in "$@"; do printf '    %s\n' "$line"; done
  (($#)) || printf '    {}\n'
}
new_topic bad-rf 3 0 >"$TMP/bad-rf.yaml"
refused "a new topic with replicationFactor 0" "spec.replicationFactor" "$TMP/bad-rf.yaml"
new_topic bad-isr 3 3 'min.insync.replicas: "3"' >"$TMP/bad-isr.yaml"
refused "min.insync.replicas 3 with replicationFactor 3" "spec.config[min.insync.replicas]" "$TMP/bad-isr.yaml"
new_topic bad-partitions 0 3 >"$TMP/bad-partitions.yaml"
refused "a new topic with 0 partitions" "spec.partitions" "$TMP/bad-partitions.yaml"
sed -e 's/^  brokers: 3$/  brokers: 0/' "$TMP/kafkacluster.yaml" >"$TMP/bad-brokers.yaml"
refused "KafkaCluster brokers 3 -> 0" "spec.brokers" "$TMP/bad-brokers.yaml"

# not_ready NAME FIELD: the KafkaTopic NAME is Ready=False with a message naming FIELD.
not_ready() {
  local s
  s="$(kn get kt "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}')"
  [[ "${s%%|*}" == False && "$s" == *"$2"* ]] || { echo "Ready condition: $s"; return 1; }
  echo "Ready=False: ${s#*|}"
}
new_topic too-many-replicas 3 5 >"$TMP/rf5.yaml"
out="$(kn apply -f "$TMP/rf5.yaml" 2>&1)" || fail "kubectl apply: replicationFactor 5 on 3 brokers (only the operator can judge)" "$out"
eventually 60 "replicationFactor 5 on 3 brokers: Ready=False naming spec.replicationFactor" not_ready too-many-replicas spec.replicationFactor
new_topic unknown-config 3 3 'not.a.topic.config: "1"' >"$TMP/unknown-config.yaml"
out="$(kn apply -f "$TMP/unknown-config.yaml" 2>&1)" || fail "kubectl apply: a topic config the brokers do not know" "$out"
# refused_event NAME TEXT: a Warning event of the KafkaTopic NAME names TEXT, and it is Ready=False.
refused_event() {
  local ev ready
  ready="$(kn get kt "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
  [[ "$ready" == False ]] || { echo "Ready is '$ready'"; return 1; }
  ev="$(kn get events --field-selector "involvedObject.kind=KafkaTopic,involvedObject.name=$1,type=Warning" \
    -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}')"
  grep -F "$2" <<<"$ev" | head -n 1 | grep . || { echo "Warning events: $ev"; return 1; }
}
eventually 60 "unknown topic config: Ready=False, a Warning event naming not.a.topic.config" \
  refused_event unknown-config not.a.topic.config
eventually 60 "unknown topic config: the Ready condition names not.a.topic.config" \
  not_ready unknown-config not.a.topic.config
out="$(kn delete kt too-many-replicas unknown-config --wait=true --timeout=60s 2>&1)" ||
  fail "delete the refused KafkaTopics" "$out"

# ---------------------------------------------------------------------------------------------
# Moving replicas of a KafkaTopic: a replication-factor change and an explicit assignment
# change are carried out by reassignment, with the records kept.
# replicas_are NAME WANT: the brokers list exactly WANT ("p:r,r p:r,r ...", replica order kept)
# for the topic NAME, every partition with its whole ISR and a leader.
replicas_are() {
  local out got
  out="$(kc describe -t "$1")" || { echo "$out"; return 1; }
  got="$(awk '/^partition /{gsub(/[\[\]]/, ""); r=""; i=6; while ($i != "isr") {r = r (r == "" ? "" : ",") $i; i++}
    isr = NF - i; if (isr != i - 6 || $4 < 0) bad = bad " " $2; printf "%s%s:%s", sep, $2, r; sep=" "}
    END {if (bad != "") printf " (not whole ISR or no leader:%s)", bad}' <<<"$out")"
  [[ "$got" == "$2" ]] || { echo "replicas: $got, expected $2"; echo "$out"; return 1; }
  echo "replicas $got"
}
printf 'apiVersion: samsa.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: moves}\nspec:\n  clusterRef: {name: %s}\n  partitions: 2\n  replicationFactor: 2\n  assignment: [[0, 1], [1, 2]]\n' \
  "$CLUSTER" >"$TMP/moves.yaml"
check "kubectl apply: KafkaTopic moves, 2 partitions on [0 1] [1 2]" kn apply -f "$TMP/moves.yaml"
eventually 90 "moves: replicas as assigned" replicas_are moves "0:0,1 1:1,2"
if out="$(kc produce -t moves -n 200 -prefix "mv-$TOKEN" 2>&1)"; then
  pass "moves: produced 200 records"
else
  fail "moves: produce 200 records" "$out"
fi
sed -e 's/assignment: \[\[0, 1\], \[1, 2\]\]/assignment: [[2, 0], [1, 0]]/' "$TMP/moves.yaml" >"$TMP/moves-2.yaml"
check "kubectl apply: assignment [[0 1] [1 2]] -> [[2 0] [1 0]]" kn apply -f "$TMP/moves-2.yaml"
eventually 120 "moves: replicas moved to [2 0] [1 0]" replicas_are moves "0:2,0 1:1,0"
check "moves: Ready again after the move" kn wait kt/moves --for=condition=Ready --timeout=60s
moved_event() {
  kn get events --field-selector "involvedObject.kind=KafkaTopic,involvedObject.name=moves,reason=ReassignmentStarted" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | grep -F "spec.assignment" | head -n 1 | grep .
}
check "moves: a ReassignmentStarted event for the assignment" moved_event
# Replication factor 2 -> 3 (the assignment removed: the operator picks the brokers).
printf 'apiVersion: samsa.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: moves}\nspec:\n  clusterRef: {name: %s}\n  partitions: 2\n  replicationFactor: 3\n' \
  "$CLUSTER" >"$TMP/moves-3.yaml"
check "kubectl apply: moves replicationFactor 2 -> 3" kn apply -f "$TMP/moves-3.yaml"
eventually 120 "moves: 3 replicas of each partition, leaders kept" replicas_are moves "0:2,0,1 1:1,0,2"
check "moves: Ready again after the replication-factor change" kn wait kt/moves --for=condition=Ready --timeout=60s
mv_consumed() {
  local out
  out="$(kc consume -t moves -n 200 -timeout 60s)" || { echo "$out"; return 1; }
  grep -v '^consumed ' <<<"$out" | sort >"$TMP/mv-got"
  for ((i = 0; i < 200; i++)); do echo "mv-$TOKEN-$i"; done | sort >"$TMP/mv-want"
  cmp -s "$TMP/mv-got" "$TMP/mv-want" || { echo "got $(wc -l <"$TMP/mv-got") records"; diff "$TMP/mv-got" "$TMP/mv-want" | head -n 5; return 1; }
  echo "200 records back after two moves, each exactly once"
}
check "moves: every record kept through the moves" mv_consumed
out="$(kn delete kt moves --wait=true --timeout=60s 2>&1)" || fail "delete KafkaTopic moves" "$out"

# ---------------------------------------------------------------------------------------------
# Delete the topic
check "kubectl delete kt $TOPIC (the operator releases its finalizer)" kn delete kt "$TOPIC" --wait=true --timeout=120s
eventually 60 "on the brokers: topic $TOPIC is gone" kc absent -t "$TOPIC"

# ---------------------------------------------------------------------------------------------
# The operator's metrics: per-reconcile latency
METRICS_PATH="/api/v1/namespaces/$OP_NS/services/$FULLNAME-metrics:metrics/proxy/metrics"
if k get --raw "$METRICS_PATH" >"$TMP/metrics" 2>"$TMP/metrics.err"; then
  pass "operator /metrics through the metrics Service ($(grep -c '^samsa_operator_' "$TMP/metrics") samsa_operator_ samples)"
  # For each kind: reconciles, errors, mean, and the histogram's bucket bounds holding the
  # median and the 90th and 99th percentiles.
  latency="$(awk '
    /^samsa_operator_reconcile_duration_seconds_(sum|count)\{/ {
      match($0, /kind="[^"]*"/); kind = substr($0, RSTART + 6, RLENGTH - 7)
      if ($1 ~ /_sum\{/) sum[kind] = $2; else count[kind] = $2 }
    /^samsa_operator_reconcile_duration_seconds_bucket\{/ {
      match($0, /kind="[^"]*"/); kind = substr($0, RSTART + 6, RLENGTH - 7)
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      nb[kind]++; bl[kind, nb[kind]] = le; bc[kind, nb[kind]] = $2 }
    /^samsa_operator_reconcile_errors_total\{/ {
      match($0, /kind="[^"]*"/); errs[substr($0, RSTART + 6, RLENGTH - 7)] = $2 }
    function q(kind, f,   i) {
      for (i = 1; i <= nb[kind]; i++) if (bc[kind, i] >= f * count[kind]) return bl[kind, i] == "+Inf" ? "+Inf" : bl[kind, i] * 1000 " ms"
      return "?" }
    END { for (kind in count) if (count[kind] > 0)
      printf "%s: %d reconciles, %d errors, mean %.1f ms, p50 <= %s, p90 <= %s, p99 <= %s\n",
        kind, count[kind], errs[kind], 1000 * sum[kind] / count[kind], q(kind, 0.5), q(kind, 0.9), q(kind, 0.99) }
  ' "$TMP/metrics" | sort)"
  if grep -q '^KafkaCluster: ' <<<"$latency" && grep -q '^KafkaTopic: ' <<<"$latency"; then
    pass "per-reconcile latency in samsa_operator_reconcile_duration_seconds for both kinds"
    printf '%s\n' "$latency" | sed 's/^/      /'
  else
    fail "per-reconcile latency for KafkaCluster and KafkaTopic" "$latency
$(grep '^samsa_operator_reconcile' "$TMP/metrics")"
  fi
else
  fail "GET the operator's /metrics through the apiserver's service proxy" "$(cat "$TMP/metrics.err")"
fi

# The chart's RBAC is enough: the operator was never refused anything.
no_forbidden() {
  local log n
  log="$(ko logs "deployment/$FULLNAME")" || return 1
  n="$(grep -ciE 'forbidden|cannot (get|list|watch|create|patch|update)' <<<"$log")"
  ((n == 0)) || { grep -iE 'forbidden|cannot (get|list|watch|create|patch|update)' <<<"$log" | head -n 5; return 1; }
  echo "no 'forbidden' in $(wc -l <<<"$log") log lines"
}
check "the operator's log: no request refused by RBAC" no_forbidden

# ---------------------------------------------------------------------------------------------
# Delete the cluster, uninstall the release
out="$(kn delete pod kclient --wait=false 2>&1)" || fail "delete the client pod" "$out"
check "kubectl delete kc $CLUSTER" kn delete kc "$CLUSTER" --wait=true --timeout="${WAIT}s"
cluster_objects_gone() {
  local left
  left="$(kn get statefulsets,services,configmaps,poddisruptionbudgets,pods -l "app.kubernetes.io/instance=$CLUSTER" -o name)" ||
    return 1
  [[ -z "$left" ]] || { echo "left: $(tr '\n' ' ' <<<"$left")"; return 1; }
  echo "no StatefulSet, Service, ConfigMap, PDB or pod of $CLUSTER left"
}
eventually "$WAIT" "what the KafkaCluster became is garbage-collected" cluster_objects_gone

# ---------------------------------------------------------------------------------------------
# Rolling restarts under load, with this operator (e2e/roll-test.sh: a cluster and namespace of
# its own; its checks count here). Its output streams; its counts come back through a file.
if [[ "${SAMSA_E2E_ROLL:-1}" == 1 && "${SAMSA_E2E_WATCH_NAMESPACE:-0}" != 1 ]]; then
  say "e2e/roll-test.sh with the operator in $OP_NS"
  SAMSA_E2E_OPERATOR_NS="$OP_NS" SAMSA_E2E_RESULTS="$TMP/roll" "$E2E_DIR/roll-test.sh"
  read -r p f <"$TMP/roll" 2>/dev/null || { p=0; f=1; }
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  ((f == 0)) || FAILED_NAMES+=("e2e/roll-test.sh: $f failed (above)")
fi

start=$SECONDS
if out="$(timeout 180 "$HELM" uninstall "$RELEASE" -n "$OP_NS" --wait --timeout 150s 2>&1)"; then
  INSTALLED=0
  pass "helm uninstall $RELEASE ($((SECONDS - start))s): $out"
else
  fail "helm uninstall $RELEASE" "$out"
fi
release_gone() {
  local left sel="app.kubernetes.io/instance=$RELEASE"
  left="$(ko get deployments,replicasets,pods,serviceaccounts,services,roles,rolebindings,leases,configmaps,secrets -o name 2>&1 |
    grep -Ev '^(serviceaccount/default|configmap/kube-root-ca.crt)$')"
  left+="$(k get clusterroles,clusterrolebindings -l "$sel" -o name 2>&1)"
  left+="$(kn get roles,rolebindings -l "$sel" -o name 2>&1)"
  left+="$(k get clusterrole,clusterrolebinding "$FULLNAME" -o name 2>/dev/null)"
  [[ -z "$left" ]] || { echo "left: $(tr '\n' ' ' <<<"$left")"; return 1; }
  echo "namespace $OP_NS holds only its default ServiceAccount and kube-root-ca.crt; no ClusterRole or ClusterRoleBinding $FULLNAME, no Role or RoleBinding of the release in $NS"
}
eventually 120 "helm uninstall left nothing of the release" release_gone
crds_kept() {
  local c
  c="$(k get crd kafkaclusters.samsa.dev kafkatopics.samsa.dev kafkausers.samsa.dev -o name | wc -l)"
  [[ "$c" == 3 ]] || { echo "$c of 3 CRDs left"; return 1; }
  echo "kafkaclusters.samsa.dev, kafkatopics.samsa.dev and kafkausers.samsa.dev kept (Helm never deletes a chart's crds/)"
}
check "CRDs kept by design" crds_kept
