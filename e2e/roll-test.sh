#!/usr/bin/env bash
# Rolling restarts of a three-broker KafkaCluster under load: the e2e test of the operator's
# roll (updateStrategy OnDelete; the operator deletes one broker pod at a time when the ISR,
# the consumer groups and the quorum allow it), and the baseline it replaces, the
# StatefulSet's own RollingUpdate. Then scaling under the same load: 3 -> 4 brokers, the
# operator moving replicas onto the new broker, and back to 3, the operator draining it first.
#
# For each scenario a pod `roll-load-<scenario>` runs, from the kclient image (e2e/kclient):
#   load     an idempotent acks=all producer, SAMSA_E2E_ROLL_RATE records/s of
#            SAMSA_E2E_ROLL_SIZE bytes to the topic `load` (6 partitions, RF 3,
#            min.insync.replicas 2), writing "partition offset key" per acknowledgement;
#   group-N  SAMSA_E2E_ROLL_MEMBERS members of the consumer group `roll-group`, writing
#            "partition offset key" per record read, committing every second;
#   isr      every 250 ms: the brokers' samsa_under_min_isr_partitions,
#            samsa_under_replicated_partitions and samsa_offline_partitions from /metrics
#            (port 9404; brokers 0-2, 0-3 in up and down), and the topic's ISR from Metadata;
#   files    `kclient sleep`, through which the test steers the others (stop and pause files
#            in the shared emptyDir /work) and reads their files; up and down also run
#            `kclient assignment` in it (every topic's replicas, leader and ISR from Metadata).
# and on this machine a `kubectl get pods -w` of the broker pods, time-stamped, from which the
# test knows when each broker went down (deletion or not Ready) and came back (a Ready pod).
#
# After each scenario (PASS/FAIL each):
#   - every acknowledged record was read by the group at its partition and offset (0 lost);
#     no key acknowledged twice (the idempotent producer), no key at two offsets in the log;
#     acknowledged offsets increase per partition; 0 delivery errors at the producer;
#   - the ISR never fell below min.insync.replicas (gauges and Metadata, every 250 ms);
#   - at most one broker down at any time (rolls only);
#   - (a figure, not a check) the longest produce stall (longest time between two
#     acknowledgements), against the goal SAMSA_E2E_ROLL_STALL_MS (1000);
#   - for the operator's roll: status.rollout (phase Complete, restarted [0 1 2], pending and
#     inProgress empty, startedAt, finishedAt, restartSeconds per broker), the events
#     BrokerRestarting, BrokerRestarted and RolloutComplete, and each broker deleted only once
#     the previous one was back in every ISR;
#   - for up and down (below): status.rebalance, the events, and the assignment of every
#     topic (__consumer_offsets included) from Metadata afterwards.
# and it prints the roll time, each broker's restart seconds (from the pod watch, and from
# status.rollout.restartSeconds), the longest stall, the consumers' maximum lag and the
# produce errors the client retried (NOT_ENOUGH_REPLICAS...). The baseline only reports
# errors, ISR dips and stalls (the StatefulSet does not look at the ISR), but it must lose no
# acknowledged record either. For up and down it prints the scale time (the patch of
# spec.brokers to status.rebalance Complete, and status.rebalance.seconds), the bytes moved and
# replica moves (status.rebalance), the longest stall and the consumers' maximum lag. At the
# end a table puts the scenarios' figures side by side.
#
# Scenarios (SAMSA_E2E_ROLL_SCENARIOS, in the order given; default "metrics baseline 1 3 4 5 6
# up down bluegreen rollback", and "metrics baseline 1 2 3 4 5 6 baseline-6 up down bluegreen
# rollback" with SAMSA_E2E_SOAK=1):
#   metrics     a real Prometheus (built from its Go module) scraping what the ServiceMonitors
#               select, with the chart's alert rules: targets up, every dashboard panel's query
#               with data, a frozen broker firing the under-replicated alert, a group that stops
#               committing going ERR and firing the lag alerts; see e2e/metrics-scenario.sh
#   baseline    spec.version changes (two tags of one broker image) with the annotation
#               samsa.dev/test-statefulset-rolling-update: "true": the StatefulSet's own
#               RollingUpdate rolls the brokers, as before the operator did it
#   1           spec.version changes: the operator rolls all three brokers
#   2           a restart-class setting changes (log.retention.check.interval.ms): a roll again
#               (left out by default for time: 4, 5 and 6 roll on such a change too)
#   3           spec.image names a tag that does not exist: the roll halts after one broker
#               (Degraded=True RolloutStuck naming ImagePullBackOff, phase Halted, one broker
#               down, the producer still acknowledged); removing spec.image recovers it
#   4           the operator's pod is deleted once the first broker restarted: the roll resumes,
#               every broker restarts once, never two down at once
#   5           the group stops committing (consumerHealth.maxLagSeconds 10): the roll holds
#               (Progressing=False ConsumerLagging naming the group, phase Blocked, no broker
#               restarted) until it commits again, then completes
#   6           restarted brokers catch up slowly (follower.replication.throttled.rate, topic
#               follower.replication.throttled.replicas=*): Ready long before they are back in
#               the ISR; the operator must wait for the ISR
#   baseline-6  scenario 6 rolled by the StatefulSet: what readiness alone does (reports only;
#               in the default list with SAMSA_E2E_SOAK=1)
#   up          spec.brokers 3 -> 4 under load, with spec.rebalance {onScaleUp: true,
#               throttleBytesPerSecond: SAMSA_E2E_SCALE_THROTTLE, maxConcurrentMoves: 10}: the
#               StatefulSet grows at once, then the operator moves replicas of every topic onto
#               broker 3 and elects the preferred leaders. Checks: the StatefulSet at 4, roll-0..3
#               Ready; status.rebalance phase Complete, reason ScaleUp, brokers [0 1 2 3],
#               partitionsDone == partitionsTotal > 0, bytesMoved > 0, inProgress empty, started
#               after the change; the events RebalanceStarted and RebalanceComplete; from
#               Metadata (kclient assignment, all topics): every partition still there with its
#               replication factor (load: 3), no broker twice in a partition, broker 3 (and every
#               broker) holding floor..ceil of the replicas / 4, broker 3 leading at least
#               floor(partitions / 4) (waits up to 60 s for the leaders), every ISR whole
#   down        spec.brokers 4 -> 3 under load: the operator drains broker 3 (StatefulSet still
#               at 4), then the StatefulSet shrinks. Checks: broker 3 holds replicas before (the
#               premise); the StatefulSet at 3, roll-0..2 Ready, roll-3 gone; status.rebalance
#               Complete, ScaleDown, brokers [0 1 2], removing [3], partitionsDone ==
#               partitionsTotal > 0; the events RebalanceStarted, BrokersDrained and
#               RebalanceComplete, roll-3 deleted no earlier than BrokersDrained (to the
#               second, 1 s slack: the operator shrinks the StatefulSet and records the drain in
#               one reconcile); every partition
#               still there with its replication factor, no broker twice in a partition, none
#               naming broker 3 (replica, ISR or leader), every ISR whole again. It runs after up:
#               when the cluster is not at 4 Ready brokers (up did not run, or failed before the
#               brokers were Ready) it first scales to 4 itself, before the load starts, and
#               waits (bounded) for that rebalance.
#               Both wait for the brokers and a Complete rebalance of the change at most
#               SAMSA_E2E_SCALE_WAIT seconds, and give up after 120 s without a rebalance of the
#               change in status.rebalance (from the change for down, from the fourth broker's
#               Ready for up). No timing is asserted. The pod watch reports when roll-3 came or
#               went and whether a broker that stays went down (a NOTE, not a check). Run up and
#               down last: the roll scenarios expect three brokers.
#   bluegreen   spec.version changes under spec.upgrade.strategy BlueGreen (blueGreen:
#               throttleBytesPerSecond SAMSA_E2E_SCALE_THROTTLE, verifySeconds SAMSA_E2E_BG_VERIFY,
#               default 10, promotion Automatic): StatefulSet $CLUSTER-g1 (brokers 1000-1002) at the
#               new version, every partition moved to it, verified, the voters moved, $CLUSTER
#               deleted. Checks: status.upgrade Done, from $CLUSTER [0 1 2] to $CLUSTER-g1 [1000
#               1001 1002], partitionsDone == partitionsTotal > 0, bytesMoved > 0; status.brokerSet
#               $CLUSTER-g1; its pods Ready on the new image; $CLUSTER, its pods and volume claims
#               gone; status.quorumVoters 1000-1002; the events of each phase; every partition as
#               before, all on 1000-1002 with each its share of replicas and leaders, every ISR
#               whole; and the load's checks (no acknowledged record lost, none twice, no delivery
#               error, the ISR never below 2). Run it after the scenarios that expect $CLUSTER-0..2.
#   rollback    after bluegreen: spec.version changes again (verifySeconds 3600); once the data is
#               on the next set ($CLUSTER-g2, brokers 2000-2002) and verifying, spec.version goes
#               back: the data moves back. Checks: status.upgrade RolledBack, status.brokerSet
#               unchanged, $CLUSTER-g2 gone with its pods and claims, the old pods never
#               restarted (same uids), every replica back with even shares, the load's checks.
# The operator's scenarios (1-6) need an operator that rolls the brokers itself: one whose
# StatefulSet has updateStrategy OnDelete. With an older operator they are skipped (SKIP,
# counted neither way) with SAMSA_E2E_ROLL_REQUIRE=0; they FAIL by default. up and down need
# the operator's replica rebalancing (spec.rebalance, status.rebalance): with an operator
# without it the CRD prunes spec.rebalance, the scales themselves work (such an operator refuses
# a scale-down only while broker 3 holds replicas, and it gave it none), the records and ISR
# checks pass, and the rebalance checks FAIL (each wait gives up after 120 s without a rebalance).
#
#   e2e/roll-test.sh       uses $KUBECONFIG, else the e2e/cluster admin kubeconfig
#
# e2e/operator-test.sh runs it before its `helm uninstall` (SAMSA_E2E_OPERATOR_NS names the
# operator's namespace: it then installs nothing); alone it installs the chart itself.
# Needs on the nodes: the Samsa images and the kclient image, as operator-test.sh; and a second
# tag <repository>:<version>-b of the broker image, which it makes with `e2e/cluster tag-image`
# on the project's cluster or SAMSA_E2E_TAG_IMAGE elsewhere.
#
# Environment:
#   SAMSA_E2E_ROLL_SCENARIOS  scenarios to run (above)
#   SAMSA_E2E_ROLL_REQUIRE=0  the operator's scenarios SKIP instead of FAIL with an operator
#                             that leaves the roll to the StatefulSet
#   SAMSA_E2E_SOAK=1          the longer variant: 1000 records/s, 30 s of load before and after
#                             each roll, scenarios 2 and baseline-6 in the default list
#   SAMSA_E2E_ROLL_RATE       records/s of the producer (default 200; 1000 with SOAK)
#   SAMSA_E2E_ROLL_SIZE       bytes per record (default 512)
#   SAMSA_E2E_ROLL_MEMBERS    consumer group members (default 2)
#   SAMSA_E2E_ROLL_SETTLE     seconds of load before and after each roll (default 3; 30 with SOAK)
#   SAMSA_E2E_ROLL_STALL_MS   the goal for the longest produce stall, in the figures (1000)
#   SAMSA_E2E_ROLL_WAIT       seconds a roll may take (default 360)
#   SAMSA_E2E_ROLL_BAD_TIMEOUT  brokerReadyTimeout of scenario 3 (default 30s)
#   SAMSA_E2E_ROLL_THROTTLE   follower.replication.throttled.rate of scenario 6, bytes/s
#                             (default 1.5 x the produced bytes/s)
#   SAMSA_E2E_SCALE_WAIT      seconds up and down may each take, the patch of spec.brokers to
#                             the brokers at the new count and status.rebalance Complete
#                             (default 420)
#   SAMSA_E2E_SCALE_THROTTLE  spec.rebalance.throttleBytesPerSecond of up and down (default
#                             20971520, 20 MiB/s: seconds for the test's data)
#   SAMSA_E2E_TAG_IMAGE       command that tags an image on every node, called with SOURCE and
#                             TARGET (default on the project's cluster: e2e/cluster tag-image;
#                             kind: "docker exec samsa-e2e-control-plane ctr -n k8s.io images tag")
#   SAMSA_E2E_OPERATOR_NS     namespace of an installed operator (set by operator-test.sh)
#   SAMSA_E2E_BROKER_REPO     the broker image repository (default samsa.local/samsa-broker)
#   SAMSA_E2E_KCLIENT_IMAGE, SAMSA_E2E_PULL_POLICY, SAMSA_E2E_HELM_SET, SAMSA_E2E_WAIT,
#   SAMSA_E2E_RESULTS, SAMSA_E2E_KEEP_NS, SAMSA_E2E_NODE_LOGS  as for operator-test.sh
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
command -v "${K[0]}" >/dev/null || { echo "roll-test: no kubectl (e2e/build-binaries.sh kubernetes)" >&2; exit 1; }
HELM="$BIN/helm"
[[ -x "$HELM" ]] || HELM="$(command -v helm || true)"

SOAK="${SAMSA_E2E_SOAK:-0}"
if [[ "$SOAK" == 1 ]]; then
  DEFAULT_SCENARIOS="metrics baseline 1 2 3 4 5 6 baseline-6 up down bluegreen rollback security"
  DEFAULT_RATE=1000 DEFAULT_SETTLE=30
else
  # Scenario 2 is left out for time: 4, 5 and 6 roll on a restart-class change too.
  DEFAULT_SCENARIOS="metrics baseline 1 3 4 5 6 up down bluegreen rollback security"
  DEFAULT_RATE=200 DEFAULT_SETTLE=3
fi
read -ra SCENARIOS <<<"${SAMSA_E2E_ROLL_SCENARIOS:-$DEFAULT_SCENARIOS}"
REQUIRE="${SAMSA_E2E_ROLL_REQUIRE:-1}"
RATE="${SAMSA_E2E_ROLL_RATE:-$DEFAULT_RATE}"
SIZE="${SAMSA_E2E_ROLL_SIZE:-512}"
MEMBERS="${SAMSA_E2E_ROLL_MEMBERS:-2}"
SETTLE="${SAMSA_E2E_ROLL_SETTLE:-$DEFAULT_SETTLE}"
STALL_MS="${SAMSA_E2E_ROLL_STALL_MS:-1000}"
ROLL_WAIT="${SAMSA_E2E_ROLL_WAIT:-360}"
BAD_TIMEOUT="${SAMSA_E2E_ROLL_BAD_TIMEOUT:-30s}"
# 1.5 x the produced bytes/s: a restarted broker catches up at about half the produce rate.
THROTTLE="${SAMSA_E2E_ROLL_THROTTLE:-$((RATE * (SIZE + 70)))}"
SCALE_WAIT="${SAMSA_E2E_SCALE_WAIT:-420}"
# spec.rebalance of the scale scenarios: fast enough for the test's data (tens of MB).
SCALE_THROTTLE="${SAMSA_E2E_SCALE_THROTTLE:-20971520}"
SCALE_MOVES=10
# Seconds a scale may go without a rebalance of its own in status.rebalance (from the change
# for a scale-down, from the new broker's Ready for a scale-up) before the wait gives up.
SCALE_START_GRACE=120
# verifySeconds of the blue-green scenario.
BG_VERIFY="${SAMSA_E2E_BG_VERIFY:-10}"
CLIENT_IMAGE="${SAMSA_E2E_KCLIENT_IMAGE:-samsa.local/e2e/kclient:1}"
PULL="${SAMSA_E2E_PULL_POLICY:-Never}"
WAIT="${SAMSA_E2E_WAIT:-300}"
BROKER_REPO="${SAMSA_E2E_BROKER_REPO:-samsa.local/samsa-broker}"
VERSION_A="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
VERSION_B="$VERSION_A-b"
STAMP="$(date +%H%M%S)-$$"
NS="samsa-roll-$STAMP"
OP_NS="${SAMSA_E2E_OPERATOR_NS:-}"
OWN_OPERATOR=0
[[ -n "$OP_NS" ]] || { OP_NS="samsa-roll-op-$STAMP"; OWN_OPERATOR=1; }
RELEASE=samsa-operator
FULLNAME=samsa-operator
CLUSTER=roll
TOPIC=load
GROUP=roll-group
BOOTSTRAP="$CLUSTER-bootstrap.$NS.svc:9092"
ANNOTATION=samsa.dev/test-statefulset-rolling-update
RESTART_KEY=log.retention.check.interval.ms
TMP="$(mktemp -d)"
INSTALLED=0
CRDS_EXISTED=0
OPERATOR_ROLLS=0
CHECKS_TAG=roll
CHECKS_FAIL_LINES=40
CHECKS_INTERVAL=1
# shellcheck source=checks.sh
. "$E2E_DIR/checks.sh"
# shellcheck source=metrics-scenario.sh
. "$E2E_DIR/metrics-scenario.sh"
# shellcheck source=security-scenario.sh
. "$E2E_DIR/security-scenario.sh"
BROKER_CONTAINER=broker
RUN_START=$SECONDS

KTIMEOUT=$((WAIT + 60))
k() { timeout "$KTIMEOUT" "${K[@]}" "$@"; }
kn() { timeout "$KTIMEOUT" "${K[@]}" -n "$NS" "$@"; }
ko() { timeout "$KTIMEOUT" "${K[@]}" -n "$OP_NS" "$@"; }
# kq ARGS...: a short kubectl call (polls), bounded to 30 s.
kq() { timeout 30 "${K[@]}" -n "$NS" "$@"; }
skip() { printf 'SKIP  %s\n' "$*"; }
now() { printf '%s' "$EPOCHREALTIME"; }
# since T0: seconds from T0 (an EPOCHREALTIME) to now, one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}'; }

# ---------------------------------------------------------------------------------------------
# Diagnostics and cleanup
DIAGNOSED=0
diagnostics() {
  ((DIAGNOSED)) && return
  DIAGNOSED=1
  echo "---------------- diagnostics (namespaces $OP_NS, $NS) ----------------"
  local cmd
  for cmd in "-n $NS get kafkaclusters,kafkatopics,statefulsets,pods,pdb -o wide" \
    "-n $NS get kafkacluster $CLUSTER -o yaml" "-n $NS get statefulset $CLUSTER -o yaml" \
    "-n $NS describe pods" "-n $NS get events --sort-by=.lastTimestamp" \
    "-n $OP_NS get pods -o wide" "-n $OP_NS logs deployment/$FULLNAME --tail=120" \
    "-n $NS logs $CLUSTER-0 --tail=30" "-n $NS logs $CLUSTER-1 --tail=30" "-n $NS logs $CLUSTER-2 --tail=30" \
    "-n $NS logs $CLUSTER-3 --tail=30"; do
    echo "\$ kubectl $cmd"
    # shellcheck disable=SC2086 # cmd is a list of words
    timeout 60 "${K[@]}" $cmd 2>&1 | tail -n 150
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

WATCH_PID=
stop_watch() {
  [[ -n "$WATCH_PID" ]] || return 0
  kill "$WATCH_PID" 2>/dev/null
  wait "$WATCH_PID" 2>/dev/null
  WATCH_PID=
}

cleanup() {
  stop_watch
  prom_cleanup
  sec_cleanup
  k -n "$NS" delete pods -l app.kubernetes.io/name=roll-load --wait=false >/dev/null 2>&1 || true
  k -n "$NS" delete kafkatopics --all --wait=true --timeout=60s >/dev/null 2>&1 || true
  k -n "$NS" delete kafkaclusters --all --wait=true --timeout=60s >/dev/null 2>&1 || true
  if ((INSTALLED)); then
    timeout 120 "$HELM" uninstall "$RELEASE" -n "$OP_NS" --wait --timeout 90s >/dev/null 2>&1 || true
  fi
  local kt
  for kt in $(k -n "$NS" get kafkatopics -o name 2>/dev/null); do
    k -n "$NS" patch "$kt" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  if ((OWN_OPERATOR)); then
    k delete namespace "$OP_NS" --wait=false >/dev/null 2>&1 || true
    ((CRDS_EXISTED)) || k delete crd kafkaclusters.samsa.dev kafkatopics.samsa.dev --wait=false >/dev/null 2>&1 || true
  fi
}

finish() {
  local rc=0
  stop_watch
  ((FAILED)) && diagnostics
  if [[ "${SAMSA_E2E_KEEP_NS:-0}" == 1 ]]; then
    say "keeping namespace $NS$( ((OWN_OPERATOR)) && echo " and the release in $OP_NS") (SAMSA_E2E_KEEP_NS=1); files in $TMP"
  else
    cleanup
    rm -rf "$TMP"
  fi
  say "roll-test took $((SECONDS - RUN_START))s"
  report_results || rc=1
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

stop() {
  say "cannot go on after this failure"
  exit 1
}
fatal() {
  fail "$1" "${2:-}"
  stop
}

# ---------------------------------------------------------------------------------------------
# Cluster queries

# kc_get JSONPATH: a field of the KafkaCluster.
kc_get() { kq get kafkacluster "$CLUSTER" -o jsonpath="$1"; }
# cond TYPE: "status|reason|message" of a condition of the KafkaCluster.
cond() {
  kc_get "{.status.conditions[?(@.type==\"$1\")].status}|{.status.conditions[?(@.type==\"$1\")].reason}|{.status.conditions[?(@.type==\"$1\")].message}"
}
rollout() { kc_get "{.status.rollout.$1}"; }
# broker_pods: "name|uid|ready|revision|image|deleting" per broker pod.
broker_pods() {
  kq get pods -l "samsa.dev/cluster=$CLUSTER" -o jsonpath='{range .items[*]}{.metadata.name}|{.metadata.uid}|{.status.conditions[?(@.type=="Ready")].status}|{.metadata.labels.controller-revision-hash}|{.spec.containers[0].image}|{.metadata.deletionTimestamp}{"\n"}{end}'
}
broker_uids() { broker_pods | cut -d'|' -f1,2 | sort | tr '\n' ' '; }
sts_revision() { kq get statefulset "$(active_set)" -o jsonpath='{.status.updateRevision}'; }
update_strategy() { kq get statefulset "$(active_set)" -o jsonpath='{.spec.updateStrategy.type}'; }

# tag_image SOURCE TARGET: TARGET names the same image on every node.
tag_image() {
  if [[ -n "${SAMSA_E2E_TAG_IMAGE:-}" ]]; then
    # shellcheck disable=SC2086 # a command line
    timeout 60 ${SAMSA_E2E_TAG_IMAGE} "$1" "$2"
  elif [[ "$KUBECONFIG" == "$OWN_KUBECONFIG" ]]; then
    timeout 60 "$E2E_DIR/cluster" tag-image "$1" "$2"
  else
    echo "not the project's cluster: set SAMSA_E2E_TAG_IMAGE to a command that tags an image on every node"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# The load pod of a scenario

LOAD_POD=
LOAD_START=
# The brokers whose /metrics the ISR sampler reads (the scale scenarios add broker 3; a broker
# that does not exist only counts as not answering).
LOAD_BROKERS="0 1 2"
# load_start NAME: the load pod roll-load-NAME, Ready, the producer acknowledging and every group
# member caught up; then SETTLE seconds of load.
load_start() {
  LOAD_POD="roll-load-$1"
  local port urls="" i groups=""
  port="$(kq get statefulset "$(active_set)" -o jsonpath='{.spec.template.spec.containers[0].ports[?(@.name=="metrics")].containerPort}')"
  for i in $LOAD_BROKERS; do urls+="${urls:+,}http://$CLUSTER-$i.$CLUSTER-headless.$NS.svc:${port:-9404}/metrics"; done
  for ((i = 0; i < MEMBERS; i++)); do
    groups+="
  - name: group-$i
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [group, -b, $BOOTSTRAP, -t, $TOPIC, -g, $GROUP, -out, /work/group-$i, -stop-file, /work/stop-group, -pause-file, /work/pause-commits]
    volumeMounts: [{name: work, mountPath: /work}]"
  done
  local out
  out="$(kn apply -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $LOAD_POD
  labels: {app.kubernetes.io/name: roll-load}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  automountServiceAccountToken: false
  enableServiceLinks: false
  volumes: [{name: work, emptyDir: {}}]
  containers:
  - name: files
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [sleep]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: load
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [load, -b, $BOOTSTRAP, -t, $TOPIC, -rate, "$RATE", -size, "$SIZE", -acks, /work/acks, -stop-file, /work/stop-load]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: isr
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [isr, -b, $BOOTSTRAP, -t, $TOPIC, -metrics, "$urls", -min-isr, "2", -interval, 250ms, -out, /work/isr, -stop-file, /work/stop-isr]
    volumeMounts: [{name: work, mountPath: /work}]$groups
EOF
)" || { fail "load pod $LOAD_POD" "$out"; return 1; }
  check "load pod $LOAD_POD Ready (producer at $RATE records/s of $SIZE B, $MEMBERS group members, ISR sampler)" \
    kn wait "pod/$LOAD_POD" --for=condition=Ready --timeout=120s || return 1
  eventually 60 "the producer acknowledges" load_acked_over 0 || return 1
  local m
  for ((m = 0; m < MEMBERS; m++)); do
    eventually 90 "group member $m caught up" member_caught_up "$m" || return 1
  done
  local a
  a="$(load_acked)"
  eventually $((SETTLE * 3 + 30)) "$SETTLE s of load before the roll" load_acked_over $((a + RATE * SETTLE)) || return 1
  LOAD_START="$(now)"
}
# load_acked: the producer's acknowledged records so far, from its progress line.
load_acked() {
  kq logs "$LOAD_POD" -c load --tail=3 2>/dev/null | sed -n 's/.*acked[= ]\([0-9]*\).*/\1/p' | tail -n 1
}
load_acked_over() {
  local a
  a="$(load_acked)"
  [[ -n "$a" ]] && ((a > $1)) || { echo "acked ${a:-?}, waiting for more than $1"; return 1; }
  echo "acked $a"
}
member_caught_up() {
  local line
  line="$(kq logs "$LOAD_POD" -c "group-$1" --tail=1 2>/dev/null)"
  [[ "$line" == *caught_up=true* ]] || { echo "${line:-no progress line yet}"; return 1; }
  echo "$line" | grep -o 'consumed=[0-9]*'
}
# files CMD FILE: kclient's file helpers in the load pod.
files() { kq exec "$LOAD_POD" -c files -- /kclient "$@"; }
# container_exit NAME: the exit code of a terminated container of the load pod.
container_exit() {
  local code
  code="$(kq get pod "$LOAD_POD" -o jsonpath="{.status.containerStatuses[?(@.name==\"$1\")].state.terminated.exitCode}")"
  [[ -n "$code" ]] || { echo "$1 still running"; return 1; }
  echo "$1 exited $code"
}
group_lag_zero() {
  local out
  out="$(files lag -b "$BOOTSTRAP" -t "$TOPIC" -g "$GROUP" 2>&1)" || { echo "$out"; return 1; }
  grep -qx 'lag total 0' <<<"$out" || { tail -n 1 <<<"$out"; return 1; }
  echo "committed lag 0"
}

# pod_watch_start FILE: every change of the broker pods, "epoch|name|uid|ready|deleting|image|grace"
# (deleting: the deletionTimestamp, which is the deletion plus grace, its deletionGracePeriodSeconds).
pod_watch_start() {
  stop_watch
  timeout $((ROLL_WAIT * 4)) "${K[@]}" -n "$NS" get pods -l "samsa.dev/cluster=$CLUSTER" -w \
    -o jsonpath='{.metadata.name}|{.metadata.uid}|{.status.conditions[?(@.type=="Ready")].status}|{.metadata.deletionTimestamp}|{.spec.containers[0].image}|{.metadata.deletionGracePeriodSeconds}{"\n"}' \
    2>"$1.err" > >(while IFS= read -r line; do printf '%s|%s\n' "$EPOCHREALTIME" "$line"; done >"$1") &
  WATCH_PID=$!
}

# ---------------------------------------------------------------------------------------------
# Waiting for a roll

PHASES_SEEN=
# roll_done IMAGE OLD_REVISION MODE: every broker pod Ready, not being deleted, on the
# StatefulSet's update revision (which is not OLD_REVISION, when given) with IMAGE; in mode
# operator also status.rollout.phase Complete.
roll_done() {
  local image="$1" old="$2" mode="$3" rev pods phase n bad
  rev="$(sts_revision)"
  [[ -n "$rev" && "$rev" != "$old" ]] || { echo "StatefulSet update revision '$rev' (was '$old')"; return 1; }
  pods="$(broker_pods)"
  n="$(grep -c . <<<"$pods")"
  bad="$(awk -F'|' -v rev="$rev" -v img="$image" '$3 != "True" || $4 != rev || $5 != img || $6 != "" {print $1 " ready=" $3 " revision=" $4 " image=" $5 ($6 ? " deleting" : "")}' <<<"$pods")"
  if [[ "$mode" == operator ]]; then
    phase="$(rollout phase)"
    [[ -n "$phase" && " $PHASES_SEEN " != *" $phase "* ]] && PHASES_SEEN+=" $phase"
    [[ "$phase" == Complete ]] || bad+=$'\n'"status.rollout.phase '$phase'"
  fi
  [[ "$n" == 3 && -z "$bad" ]] || { echo "$n broker pods; $bad"; return 1; }
  echo "3 brokers Ready on revision $rev with $image"
}
# wait_roll IMAGE OLD_REVISION MODE: waits up to ROLL_WAIT seconds for roll_done; sets ROLL_SECONDS
# (from TRIGGER_AT).
ROLL_SECONDS=-
wait_roll() {
  local start=$SECONDS out
  PHASES_SEEN=
  until out="$(roll_done "$@" 2>&1)"; do
    if ((SECONDS - start >= ROLL_WAIT)); then
      fail "the roll completes within ${ROLL_WAIT}s" "$out"
      ROLL_SECONDS=-
      return 1
    fi
    sleep 1
  done
  ROLL_SECONDS="$(since "$TRIGGER_AT")"
  pass "the roll completed ${ROLL_SECONDS}s after the change: $out${PHASES_SEEN:+ (phases seen:$PHASES_SEEN)}"
}
# holds_for SECONDS NAME FUNC ARGS...: FUNC keeps succeeding for SECONDS (checked every second).
holds_for() {
  local limit="$1" name="$2" out start=$SECONDS
  shift 2
  while ((SECONDS - start < limit)); do
    out="$("$@" 2>&1)" || { fail "$name (broke after $((SECONDS - start))s)" "$out"; return 1; }
    sleep 1
  done
  pass "$name: held ${limit}s: $(tail -n 1 <<<"$out")"
}

# ---------------------------------------------------------------------------------------------
# Ending a scenario: stop the load, wait for the group, collect, check, record the figures.

declare -A FIG
FIG_ROWS=(roll restart_watch restart_status scale bytes moves stall lag retries errors records min_isr under_min down)
declare -A FIG_LABEL=(
  [roll]="roll time (s)"
  [scale]="scale to Complete s (status)"
  [bytes]="bytes moved (status)"
  [moves]="replica moves (status)"
  [restart_watch]="restart s per broker (pods)"
  [restart_status]="restartSeconds (status)"
  [stall]="longest produce stall (ms)"
  [lag]="consumer max lag (rec/ms)"
  [retries]="produce retries"
  [errors]="delivery errors"
  [records]="acked / lost / dup"
  [min_isr]="min ISR (Metadata)"
  [under_min]="samples under min ISR"
  [down]="max brokers down"
)
SCENARIOS_RUN=()

# load_stop NAME MODE: MODE operator (every check), sts (errors, ISR and stalls reported only) or
# scale (every check but the roll's: the pod watch is reported by scale_watch_report).
load_stop() {
  local name="$1" mode="$2" dir="$SCEN_DIR"
  local settle_from
  settle_from="$(load_acked)"
  eventually $((SETTLE * 3 + 30)) "$SETTLE s of load after the roll" load_acked_over $((${settle_from:-0} + RATE * SETTLE))
  files touch /work/stop-load >/dev/null || fail "touch /work/stop-load in $LOAD_POD"
  eventually 150 "the producer flushed and exited" container_exit load
  eventually 120 "group $GROUP read everything (committed lag 0)" group_lag_zero
  files touch /work/stop-group >/dev/null || fail "touch /work/stop-group in $LOAD_POD"
  files touch /work/stop-isr >/dev/null || fail "touch /work/stop-isr in $LOAD_POD"
  local m
  for ((m = 0; m < MEMBERS; m++)); do
    eventually 60 "group member $m committed and left" container_exit "group-$m"
  done
  eventually 30 "the ISR sampler exited" container_exit isr
  stop_watch
  files cat /work/acks >"$dir/acks" 2>"$dir/acks.err" || fail "read /work/acks" "$(cat "$dir/acks.err")"
  files cat /work/isr >"$dir/isr" 2>/dev/null || fail "read /work/isr"
  : >"$dir/consumed"
  for ((m = 0; m < MEMBERS; m++)); do
    files cat "/work/group-$m" >>"$dir/consumed" 2>/dev/null || fail "read /work/group-$m"
    kq logs "$LOAD_POD" -c "group-$m" | grep '^group ' | grep -v '^group t=' >>"$dir/group.out"
  done
  kq logs "$LOAD_POD" -c load >"$dir/load.log" 2>&1
  kq logs "$LOAD_POD" -c isr >"$dir/isr.out" 2>&1
  kn delete pod "$LOAD_POD" --wait=false >/dev/null 2>&1

  SCENARIOS_RUN+=("$name")
  local soft=0
  [[ "$mode" == sts ]] && soft=1
  # --- the producer
  local summary sent acked errors pause at retries started stall_at=
  summary="$(grep '^load sent' "$dir/load.log" | tail -n 1)"
  read -r _ _ sent _ acked _ errors _ pause _ at _ retries _ started <<<"$summary"
  [[ -n "$started" ]] && stall_at="$(awk -v s="$started" -v a="${at%s}" -v t="$TRIGGER_AT" 'BEGIN {printf "%+.1f", s + a - t}')"
  FIG[$name,stall]="${pause:--}${stall_at:+ at ${stall_at}s}"
  FIG[$name,retries]="${retries:--}"
  FIG[$name,errors]="${errors:--}"
  if [[ -z "$summary" ]]; then
    fail "$name: the producer's summary" "$(tail -n 5 "$dir/load.log")"
  elif ((errors == 0)); then
    pass "$name: 0 delivery errors at the producer: sent $sent, acked $acked, retried $retries"
  elif ((soft)); then
    say "NOTE $name: $errors delivery errors at the producer (reported, not failed: the StatefulSet's roll): $(grep -m1 'records failed' "$dir/load.log")"
  else
    fail "$name: 0 delivery errors at the producer" "$summary"$'\n'"$(grep 'records failed' "$dir/load.log")"
  fi
  # The stall is a figure (printed, and in the table), never a timed check: a busy machine
  # must not fail the test; what must hold (no error, nothing lost) is checked above and below.
  if [[ -n "$pause" ]]; then
    if ((pause <= STALL_MS)); then
      say "$name: longest produce stall ${pause} ms (goal <= $STALL_MS ms), ending ${stall_at}s from the change"
    else
      say "NOTE $name: longest produce stall ${pause} ms, ending ${stall_at}s from the change (over the goal of $STALL_MS ms; reported)"
    fi
  fi
  # --- the records
  local acct
  acct="$(records_check "$dir/acks" "$dir/consumed")"
  FIG[$name,records]="$(sed -n 's/^figures //p' <<<"$acct")"
  if grep -q '^ok' <<<"$acct"; then
    pass "$name: every acknowledged record read back: $(sed -n 's/^ok //p' <<<"$acct")"
  else
    fail "$name: every acknowledged record read back, no duplicate, offsets increasing" "$(grep -v '^figures' <<<"$acct")"
  fi
  # --- the consumers
  FIG[$name,lag]="$(awk '{for (i = 1; i < NF; i++) {if ($i == "max_lag_records" && $(i+1) > r) r = $(i+1); if ($i == "max_lag_ms" && $(i+1) > m) m = $(i+1)}} END {printf "%d/%d", r, m}' "$dir/group.out")"
  say "$name: consumer group $GROUP: $(grep '^group consumed' "$dir/group.out" | tr '\n' ';')"
  # --- the ISR
  isr_check "$name" "$dir/isr" "$soft"
  # --- brokers down
  if [[ "$mode" == bluegreen ]]; then
    check "$name: the old brokers ($BG_FROM) stayed Ready until their set was deleted, the new ones ($BG_TO) once Ready until deleted" set_stayed_up "$dir/pods"
  elif [[ "$mode" == scale ]]; then
    scale_watch_report "$name" "$dir/pods"
  elif [[ "$mode" == metrics ]]; then
    : # no broker is restarted: one is frozen, which the ISR and records checks cover
  else
    watch_check "$name" "$dir/pods" "$dir/isr" "$mode"
  fi
  local row line=""
  for row in "${FIG_ROWS[@]}"; do line+="${line:+; }${FIG_LABEL[$row]} ${FIG[$name,$row]:--}"; done
  say "$name figures: $line"
}

# records_check ACKS CONSUMED: "ok ..." or the problems; a "figures acked/lost/dup" line.
records_check() {
  awk '
    FNR == 1 { file++ }
    file == 1 {
      acked++
      if ($3 in ackkey) dupack++
      ackkey[$3] = 1
      if (($1, $2) in ackat) dupoff++
      ackat[$1, $2] = $3
      if (($1 in last) && $2 <= last[$1]) { if (backwards++ < 3) bw = bw " partition " $1 ": " $2 " after " last[$1] ";" }
      last[$1] = $2
      next
    }
    {
      if (($1, $2) in seen) { if (seen[$1, $2] != $3) conflict++; reread++; next }
      seen[$1, $2] = $3
      distinct++
      if ($3 in keyat) duplog++
      keyat[$3] = 1
    }
    END {
      for (po in ackat) {
        if (!(po in seen)) { if (lost++ < 5) { split(po, x, SUBSEP); ex = ex " " x[1] "/" x[2] "(" ackat[po] ")" } }
        else if (seen[po] != ackat[po]) { if (mismatch++ < 5) { split(po, x, SUBSEP); ex = ex " " x[1] "/" x[2] ":" seen[po] "!=" ackat[po] } }
      }
      for (po in seen) if (!(po in ackat)) unacked++
      printf "figures %d / %d / %d\n", acked, lost + mismatch, dupack + duplog
      bad = 0
      if (acked == 0) { print "no acknowledged record at all"; bad = 1 }
      if (lost) { printf "%d acknowledged records never read, e.g.%s\n", lost, ex; bad = 1 }
      if (mismatch) { printf "%d offsets read with another key than acknowledged, e.g.%s\n", mismatch, ex; bad = 1 }
      if (dupack) { printf "%d keys acknowledged twice\n", dupack; bad = 1 }
      if (dupoff) { printf "%d offsets acknowledged twice\n", dupoff; bad = 1 }
      if (duplog) { printf "%d keys in the log at two offsets (a duplicate write)\n", duplog; bad = 1 }
      if (conflict) { printf "%d offsets read twice with different keys\n", conflict; bad = 1 }
      if (backwards) { printf "acknowledged offsets went backwards %d times:%s\n", backwards, bw; bad = 1 }
      if (!bad) printf "ok %d acknowledged, all read at their offsets (%d distinct records read, %d re-read after a rebalance, %d read but not acknowledged); no key twice; offsets increasing per partition\n", acked, distinct, reread, unacked
    }' "$1" "$2"
}

# isr_check NAME ISR_FILE SOFT: the ISR never below min.insync.replicas.
isr_check() {
  local name="$1" file="$2" soft="$3" s
  s="$(awk '
    { n++
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      if (v["under_min_isr"] == "-" && v["meta_min_isr"] == "-") { blind++; next }
      if (v["under_min_isr"] != "-" && v["under_min_isr"] > 0) gauge++
      if (v["meta_min_isr"] != "-") {
        if (min == "" || v["meta_min_isr"] < min) min = v["meta_min_isr"]
        if (v["meta_under_min_isr"] > 0) meta++
        if (v["meta_no_leader"] > 0) noleader++
      }
    }
    END { printf "%d %d %d %s %d %d\n", n, gauge, meta, (min == "" ? "-" : min), noleader, blind }' "$file")"
  local n gauge meta min noleader blind
  read -r n gauge meta min noleader blind <<<"$s"
  FIG[$name,min_isr]="$min"
  FIG[$name,under_min]="$((gauge > meta ? gauge : meta))/$n"
  local text="$n samples: under min ISR in $gauge (broker gauges) and $meta (Metadata); smallest ISR $min; no leader in $noleader; no answer in $blind"
  if ((n < 10)); then
    fail "$name: the ISR sampled every second" "$text"
  elif ((gauge == 0 && meta == 0 && noleader == 0)) && [[ "$min" != - ]] && ((min >= 2)); then
    pass "$name: the ISR never below min.insync.replicas 2: $text"
  elif ((soft)); then
    say "NOTE $name: the ISR went below min.insync.replicas (reported, not failed: the StatefulSet's roll): $text"
  else
    fail "$name: the ISR never below min.insync.replicas 2" "$text"$'\n'"$(grep -E 'under_min_isr=[1-9]|meta_under_min_isr=[1-9]|meta_no_leader=[1-9]' "$file" | head -n 5)"
  fi
}

# watch_check NAME PODS_FILE ISR_FILE MODE: at most one broker down at once; each broker's time
# down (deletion or not Ready until Ready again) and when it was back in the ISR; in mode
# operator each broker deleted only after the previous one was back in every ISR.
watch_check() {
  local name="$1" pods="$2" isr="$3" mode="$4" out
  out="$(awk -F'|' -v t0="$TRIGGER_AT" '
    FNR == 1 { file++ }
    file == 1 {
      # ISR samples: "t=EPOCH ... meta_under_replicated=N ..."
      # Two views of "every ISR whole": Metadata (one broker'"'"'s view, which can trail) and
      # the partition leaders'"'"' own under-replicated gauges (every topic).
      split($0, f, " "); t = ""; u = "-"; g = "-"; q = "-"; o = "-"
      for (i in f) { split(f[i], kv, "="); if (kv[1] == "t") t = kv[2]; if (kv[1] == "meta_under_replicated") u = kv[2]; if (kv[1] == "under_replicated") g = kv[2]; if (kv[1] == "quorum_leader") q = kv[2]; if (kv[1] == "out_of_isr") o = kv[2] }
      if (t != "") { ns++; st[ns] = t; su[ns] = u; sg[ns] = g; sq[ns] = q; so[ns] = "," o "," }
      next
    }
    {
      t = $1; name = $2; uid = $3; up = ($4 == "True" && $5 == "")
      cur[name] = up
      if (!up && !(name in downat)) { downat[name] = t; olduid[name] = uid }
      else if (up && (name in downat)) { ni++; iname[ni] = name; istart[ni] = downat[name]; iend[ni] = t; inew[ni] = (uid != olduid[name]); delete downat[name] }
      d = 0; for (x in cur) if (!cur[x]) d++
      if (d > maxd) maxd = d
    }
    END {
      for (x in downat) { ni++; iname[ni] = x; istart[ni] = downat[x]; iend[ni] = ""; inew[ni] = 0 }
      # intervals by start
      for (i = 1; i <= ni; i++) for (j = i + 1; j <= ni; j++) if (istart[j] < istart[i]) {
        tmp = iname[i]; iname[i] = iname[j]; iname[j] = tmp; tmp = istart[i]; istart[i] = istart[j]; istart[j] = tmp
        tmp = iend[i]; iend[i] = iend[j]; iend[j] = tmp; tmp = inew[i]; inew[i] = inew[j]; inew[j] = tmp }
      printf "maxdown %d\n", maxd
      for (i = 1; i <= ni; i++) {
        back = ""
        n = split(iname[i], parts, "-")
        # back in the ISR of every partition: the first sample after Ready that does not list it
        if (iend[i] != "") for (s = 1; s <= ns; s++) if (st[s] >= iend[i] && so[s] != ",-," && index(so[s], "," parts[n] ",") == 0) { back = st[s]; break }
        # the quorum leader at the last sample before it went down
        ql = "-"; for (s = 1; s <= ns && st[s] <= istart[i]; s++) if (sq[s] != "-") ql = sq[s]
        printf "interval %s %.1f %s %s %s %s %s\n", iname[i], istart[i] - t0, (iend[i] == "" ? "-" : sprintf("%.1f", iend[i] - istart[i])), (back == "" ? "-" : sprintf("%.1f", back - iend[i])), inew[i] ? "new-pod" : "same-pod", (iend[i] == "" ? "-" : sprintf("%.1f", iend[i] - t0)), (ql == parts[n] ? "quorum-leader" : "follower")
        if (i > 1) {
          ok = 0
          if (iend[i-1] != "" && iend[i-1] <= istart[i]) for (s = 1; s <= ns; s++) if (st[s] > iend[i-1] && st[s] <= istart[i] + 0.5 && (su[s] == "0" || sg[s] == "0")) ok = 1
          printf "isrwait %s %s %d\n", iname[i-1], iname[i], ok
        }
      }
    }' "$isr" "$pods")"
  printf '%s\n' "$out" >"$SCEN_DIR/intervals"
  local maxdown
  maxdown="$(sed -n 's/^maxdown //p' <<<"$out")"
  FIG[$name,down]="$maxdown"
  local per="" iv_name iv_start iv_down iv_isr iv_kind iv_end iv_role
  while read -r _ iv_name iv_start iv_down iv_isr iv_kind iv_end iv_role; do
    say "$name: $iv_name down at +${iv_start}s for ${iv_down}s ($iv_kind, $iv_role of the metadata quorum), in every ISR of $TOPIC ${iv_isr}s after Ready"
    per+="${per:+ }${iv_name##*-}:$iv_down$([[ $iv_role == quorum-leader ]] && echo '*')"
  done < <(grep '^interval ' <<<"$out")
  FIG[$name,restart_watch]="${per:--}"
  if [[ "$maxdown" == 0 ]]; then
    fail "$name: the brokers restarted (the pod watch saw none go down)" "$(tail -n 5 "$pods")"
  elif ((maxdown <= 1)); then
    pass "$name: at most one broker down at any time (pod watch: $(grep -c '^interval ' <<<"$out") restarts)"
  elif [[ "$mode" == sts ]]; then
    say "NOTE $name: $maxdown brokers down at once (reported)"
  else
    fail "$name: at most one broker down at any time" "$out"
  fi
  if [[ "$mode" == operator ]]; then
    local bad
    bad="$(awk '$1 == "isrwait" && $4 == 0 {print $3 " deleted before " $2 " was back in every ISR (no sample of the topic with its ISR whole in between)"}' <<<"$out")"
    if [[ -z "$bad" ]]; then
      pass "$name: each broker deleted only once the previous one was back in every ISR"
    else
      fail "$name: each broker deleted only once the previous one was back in every ISR" "$bad"$'\n'"$out"
    fi
  fi
}

# operator_status_checks NAME [VERSION]: status.rollout after a complete roll.
operator_status_checks() {
  local name="$1" version="${2:-}" s
  s="$(kc_get '{.status.rollout.phase}|{.status.rollout.restarted}|{.status.rollout.pending}|{.status.rollout.inProgress}|{.status.rollout.startedAt}|{.status.rollout.finishedAt}|{.status.rollout.targetVersion}|{.status.rollout.restartSeconds}')"
  local phase restarted pending inprogress started finished tv secs
  IFS='|' read -r phase restarted pending inprogress started finished tv secs <<<"$s"
  local ids
  ids="$(tr -c '0-9\n' ' ' <<<"$restarted" | xargs -n1 2>/dev/null | sort -n | tr '\n' ' ')"
  local problems=""
  [[ "$phase" == Complete ]] || problems+="phase '$phase'; "
  [[ "$ids" == "0 1 2 " ]] || problems+="restarted '$restarted'; "
  [[ -z "$pending" || "$pending" == "[]" ]] || problems+="pending '$pending'; "
  [[ -z "$inprogress" || "$inprogress" == "[]" ]] || problems+="inProgress '$inprogress'; "
  [[ -n "$started" && -n "$finished" && ! "$finished" < "$started" ]] || problems+="startedAt '$started' finishedAt '$finished'; "
  [[ -z "$version" || "$tv" == "$version" ]] || problems+="targetVersion '$tv', expected $version; "
  local n
  n="$(grep -o '"[0-9]*":[0-9.]*' <<<"$secs" | wc -l)"
  ((n == 3)) || problems+="restartSeconds '$secs'; "
  FIG[$name,restart_status]="$(grep -o '"[0-9]*":[0-9.]*' <<<"$secs" | tr -d '"' | awk -F: '{printf "%s%s:%.1f", sep, $1, $2; sep = " "}')"
  [[ -n "${FIG[$name,restart_status]}" ]] || FIG[$name,restart_status]=-
  if [[ -z "$problems" ]]; then
    pass "$name: status.rollout: Complete, restarted [0 1 2], nothing pending, $started -> $finished, restartSeconds ${FIG[$name,restart_status]}${tv:+, targetVersion $tv}"
  else
    fail "$name: status.rollout after the roll" "$problems"$'\n'"$s"
  fi
  local reason missing="" msgs=""
  for reason in BrokerRestarting BrokerRestarted RolloutComplete; do
    local ev
    ev="$(kq get events --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$CLUSTER,reason=$reason" \
      -o jsonpath='{range .items[*]}{.lastTimestamp}{.eventTime}|{.series.lastObservedTime}|{.message}{"\n"}{end}' 2>/dev/null |
      awk -F'|' -v t="$TRIGGER_UTC" '$1 >= t || ($2 != "" && $2 >= t)')"
    [[ -n "$ev" ]] || missing+=" $reason"
    msgs+="$reason: $(cut -d'|' -f3 <<<"$ev" | sort -u | head -n 3 | paste -sd';')"$'\n'
  done
  if [[ -z "$missing" ]]; then
    pass "$name: events BrokerRestarting, BrokerRestarted, RolloutComplete since the change"
    printf '%s' "$msgs" | sed 's/^/      /'
  else
    fail "$name: events BrokerRestarting, BrokerRestarted, RolloutComplete since the change (missing:$missing)" "$msgs"
  fi
}

# ---------------------------------------------------------------------------------------------
# Scenarios

# needs_operator NAME: true when the installed operator rolls the brokers itself (and then
# without the test-only annotation, so that it does).
needs_operator() {
  if ((OPERATOR_ROLLS)); then
    set_annotation off || return 1
    eventually 60 "$1: the operator rolls (StatefulSet updateStrategy OnDelete)" strategy_is OnDelete
    return
  fi
  if [[ "$REQUIRE" == 1 ]]; then
    fail "scenario $1: the operator rolls the brokers itself (StatefulSet updateStrategy OnDelete)" \
      "updateStrategy is '$(update_strategy)': this operator leaves the roll to the StatefulSet"
  else
    skip "scenario $1: needs the operator that rolls brokers itself; the StatefulSet's updateStrategy is '$(update_strategy)' (SAMSA_E2E_ROLL_REQUIRE=0 skips)"
  fi
  return 1
}

# set_annotation on|off: the test-only switch to the StatefulSet's RollingUpdate.
set_annotation() {
  local out
  if [[ "$1" == on ]]; then
    out="$(kn annotate kafkacluster "$CLUSTER" "$ANNOTATION=true" --overwrite 2>&1)" || { fail "annotate $ANNOTATION=true" "$out"; return 1; }
  elif [[ -n "$(kc_get "{.metadata.annotations.${ANNOTATION//./\\.}}")" ]]; then
    out="$(kn annotate kafkacluster "$CLUSTER" "$ANNOTATION-" 2>&1)" || { fail "remove the annotation $ANNOTATION" "$out"; return 1; }
  fi
}
strategy_is() {
  local s
  s="$(update_strategy)"
  [[ "$s" == "$1" ]] || { echo "updateStrategy '$s'"; return 1; }
  echo "updateStrategy $s"
}
other_version() {
  [[ "$(kc_get '{.spec.version}')" == "$VERSION_A" ]] && echo "$VERSION_B" || echo "$VERSION_A"
}
patch_kc() {
  local out
  out="$(kn patch kafkacluster "$CLUSTER" --type merge -p "$1" 2>&1)" || { fail "kubectl patch kc $CLUSTER $1" "$out"; return 1; }
  say "kubectl patch kc $CLUSTER $1"
}
# trigger PATCH: the change that starts a roll, at TRIGGER_AT.
trigger() {
  REV0="$(sts_revision)"
  UIDS0="$(broker_uids)"
  TRIGGER_AT="$(now)"
  TRIGGER_UTC="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  patch_kc "$1"
}
restart_setting_patch() {
  local cur
  cur="$(kc_get "{.spec.config.log\\.retention\\.check\\.interval\\.ms}")"
  printf '{"spec":{"config":{"%s":"%s"}}}' "$RESTART_KEY" "$(( ${cur:-300000} == 300000 ? 300001 : 300000 ))"
}
all_restarted() {
  local now_uids old
  now_uids="$(broker_uids)"
  for old in $UIDS0; do
    [[ " $now_uids " != *" $old "* ]] || { echo "pod ${old%%|*} was not replaced"; return 1; }
  done
  echo "every broker pod replaced"
}
# begin MODE NAME: the pod watch, then the load.
begin() {
  SCEN_DIR="$TMP/$2"
  mkdir -p "$SCEN_DIR"
  pod_watch_start "$SCEN_DIR/pods"
  load_start "$2"
}
record_roll() { FIG[$1,roll]="$ROLL_SECONDS"; [[ -n "${FIG[$1,restart_status]:-}" ]] || FIG[$1,restart_status]=-; }

# A version change; MODE sts (the baseline: the StatefulSet's RollingUpdate) or operator.
scenario_version() {
  local name="$1" mode="$2" version
  say "=== scenario $name: spec.version change, rolled by $([[ $mode == sts ]] && echo "the StatefulSet (RollingUpdate, annotation $ANNOTATION)" || echo "the operator")"
  if [[ "$mode" == sts ]]; then
    set_annotation on || return 1
    eventually 60 "$name: with the annotation the StatefulSet rolls itself" strategy_is RollingUpdate || return 1
  else
    needs_operator "$name" || return 0
  fi
  version="$(other_version)"
  begin "$mode" "$name" || return 1
  trigger "{\"spec\":{\"version\":\"$version\"}}" || return 1
  wait_roll "$BROKER_REPO:$version" "$REV0" "$mode"
  record_roll "$name"
  check "$name: every broker pod replaced, running $BROKER_REPO:$version" all_restarted
  [[ "$mode" == operator ]] && operator_status_checks "$name" "$version"
  load_stop "$name" "$mode"
  [[ "$mode" == sts ]] && set_annotation off
  return 0
}

# A restart-class setting change rolled by the operator; with "kill-operator", the operator's
# pod is deleted once the first broker restarted.
scenario_setting() {
  local name="$1" variant="${2:-}" image
  say "=== scenario $name: a restart-class setting ($RESTART_KEY) changes${variant:+, the operator pod deleted mid-roll}"
  needs_operator "$name" || return 0
  image="$(kq get statefulset "$CLUSTER" -o jsonpath='{.spec.template.spec.containers[0].image}')"
  begin operator "$name" || return 1
  trigger "$(restart_setting_patch)" || return 1
  if [[ "$variant" == kill-operator ]]; then
    local op_pod
    op_pod="$(ko get pods -l "app.kubernetes.io/instance=$RELEASE" -o jsonpath='{.items[0].metadata.name}')"
    eventually 180 "$name: the first broker restarted (status.rollout.restarted)" first_restarted || return 1
    local out
    out="$(ko delete pod "$op_pod" --wait=false 2>&1)" && pass "$name: deleted the operator pod $op_pod mid-roll" ||
      fail "$name: delete the operator pod $op_pod" "$out"
    eventually 120 "$name: a new operator pod leads" new_operator_leads "$op_pod"
  fi
  wait_roll "$image" "$REV0" operator
  record_roll "$name"
  check "$name: every broker pod replaced" all_restarted
  operator_status_checks "$name"
  [[ "$variant" == kill-operator ]] && restarted_once_check "$name"
  load_stop "$name" operator
}
first_restarted() {
  local r
  r="$(rollout restarted)"
  [[ "$r" =~ [0-9] ]] || { echo "restarted '$r', phase $(rollout phase), inProgress $(rollout inProgress)"; return 1; }
  echo "restarted $r, inProgress $(rollout inProgress)"
}
new_operator_leads() {
  local holder pod
  pod="$(ko get pods -l "app.kubernetes.io/instance=$RELEASE" -o jsonpath='{range .items[*]}{.metadata.name}|{.metadata.deletionTimestamp}|{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')"
  holder="$(ko get lease "$FULLNAME" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)"
  [[ -n "$holder" && "$holder" != "$1" && " $pod " == *" $holder||True "* ]] ||
    { echo "operator pods: $pod; Lease holder '$holder' (the deleted pod: $1)"; return 1; }
  echo "Lease held by $holder"
}
# restarted_once_check NAME: the pod watch saw each broker go down exactly once.
restarted_once_check() {
  local counts
  counts="$(awk -F'|' '{up = ($4 == "True" && $5 == ""); if (!up && !($2 in down)) {down[$2] = 1; n[$2]++} else if (up) delete down[$2]} END {for (p in n) print p, n[p]}' "$SCEN_DIR/pods" | sort)"
  if [[ "$(awk '$2 == 1' <<<"$counts" | wc -l)" == 3 ]]; then
    pass "$1: every broker restarted exactly once across the operator's restart: $(tr '\n' ' ' <<<"$counts")"
  else
    fail "$1: every broker restarted exactly once across the operator's restart" "$counts"
  fi
}

# A bad image halts the roll after one broker; removing spec.image recovers.
scenario_bad_image() {
  local name=3 image bad
  say "=== scenario 3: spec.image names a tag that does not exist (brokerReadyTimeout $BAD_TIMEOUT)"
  needs_operator 3 || return 0
  image="$(kq get statefulset "$CLUSTER" -o jsonpath='{.spec.template.spec.containers[0].image}')"
  bad="$BROKER_REPO:no-such-tag-$STAMP"
  patch_kc "{\"spec\":{\"upgrade\":{\"rolling\":{\"brokerReadyTimeout\":\"$BAD_TIMEOUT\"}}}}" || return 1
  begin operator 3 || return 1
  trigger "{\"spec\":{\"image\":\"$bad\"}}" || return 1
  local timeout_s
  timeout_s="$(awk -v d="$BAD_TIMEOUT" 'BEGIN {s = 0; n = ""; for (i = 1; i <= length(d); i++) {c = substr(d, i, 1); if (c ~ /[0-9]/) n = n c; else {s += n * (c == "h" ? 3600 : c == "m" ? 60 : 1); n = ""}} print s}')"
  eventually $((timeout_s + 120)) "3: Degraded=True RolloutStuck naming the pod and ImagePullBackOff" stuck_condition
  check "3: status.rollout.phase Halted" rollout_phase_is Halted
  check "3: one broker down, with the bad image; the other two Ready on the old one" one_bad_broker "$bad" "$image"
  local a
  a="$(load_acked)"
  eventually 60 "3: the producer goes on acknowledging while the roll is halted" load_acked_over $((a + RATE * 5))
  holds_for 10 "3: the roll stays halted (no other broker restarted)" one_bad_broker "$bad" "$image"
  # Revert: the spec as before, so the template is the old revision again.
  local out
  out="$(kn patch kafkacluster "$CLUSTER" --type json -p '[{"op":"remove","path":"/spec/image"}]' 2>&1)" ||
    fail "3: remove spec.image" "$out"
  say "kubectl patch kc $CLUSTER: removed spec.image"
  wait_roll "$image" "" operator
  record_roll 3
  eventually 60 "3: Degraded no longer True" degraded_not_true
  load_stop 3 operator
  patch_kc '{"spec":{"upgrade":{"rolling":{"brokerReadyTimeout":"5m"}}}}'
}
stuck_condition() {
  local c
  c="$(cond Degraded)"
  [[ "$c" == True\|RolloutStuck\|* && "$c" == *ImagePullBackOff* && "$c" =~ $CLUSTER-[0-2] ]] ||
    { echo "Degraded: $c; rollout phase $(rollout phase)"; return 1; }
  echo "Degraded: $c"
}
rollout_phase_is() {
  local p
  p="$(rollout phase)"
  [[ "$p" == "$1" ]] || { echo "phase '$p'"; return 1; }
  echo "phase $p, blockedReason '$(rollout blockedReason)'"
}
degraded_not_true() {
  local c
  c="$(cond Degraded)"
  [[ "$c" != True\|* ]] || { echo "Degraded: $c"; return 1; }
  echo "Degraded: ${c:-absent}"
}
one_bad_broker() {
  local pods
  pods="$(broker_pods)"
  awk -F'|' -v bad="$1" -v good="$2" '
    $5 == bad && $3 != "True" {nbad++; badpod = $1}
    $5 == good && $3 == "True" && $6 == "" {ngood++}
    END {exit !(nbad == 1 && ngood == 2)}' <<<"$pods" ||
    { echo "$pods"; return 1; }
  echo "$(awk -F'|' -v bad="$1" '$5 == bad {print $1}' <<<"$pods") on $1, not Ready; two Ready on $2"
}

# A consumer group that stops committing holds the roll until it commits again.
scenario_consumer() {
  local name=5 image
  say "=== scenario 5: the group $GROUP stops committing (consumerHealth.maxLagSeconds 10)"
  needs_operator 5 || return 0
  image="$(kq get statefulset "$CLUSTER" -o jsonpath='{.spec.template.spec.containers[0].image}')"
  patch_kc "{\"spec\":{\"upgrade\":{\"consumerHealth\":{\"enabled\":true,\"groups\":[\"$GROUP\"],\"maxLagSeconds\":10}}}}" || return 1
  begin operator 5 || return 1
  files touch /work/pause-commits >/dev/null || fail "5: pause the group's commits"
  eventually 60 "5: the group's committed lag passes 12 s of records" committed_lag_over $((RATE * 12))
  trigger "$(restart_setting_patch)" || return 1
  eventually 120 "5: Progressing=False ConsumerLagging naming $GROUP" lagging_condition
  check "5: status.rollout.phase Blocked, blockedReason ConsumerLagging" blocked_lagging
  holds_for 10 "5: no broker restarted while the group lags" same_uids
  files rm /work/pause-commits >/dev/null || fail "5: resume the group's commits"
  say "the group commits again"
  wait_roll "$image" "$REV0" operator
  record_roll 5
  check "5: every broker pod replaced" all_restarted
  check "5: Progressing no longer ConsumerLagging" not_lagging
  operator_status_checks 5
  load_stop 5 operator
  patch_kc '{"spec":{"upgrade":{"consumerHealth":{"enabled":true,"groups":[],"maxLagSeconds":300}}}}'
}
committed_lag_over() {
  local out total
  out="$(files lag -b "$BOOTSTRAP" -t "$TOPIC" -g "$GROUP" 2>&1)" || { echo "$out"; return 1; }
  total="$(sed -n 's/^lag total //p' <<<"$out")"
  ((${total:-0} > $1)) || { echo "committed lag ${total:-?} records"; return 1; }
  echo "committed lag $total records"
}
lagging_condition() {
  local c
  c="$(cond Progressing)"
  [[ "$c" == False\|ConsumerLagging\|* && "$c" == *"$GROUP"* ]] || { echo "Progressing: $c; rollout phase $(rollout phase)"; return 1; }
  echo "Progressing: $c"
}
blocked_lagging() {
  local p r
  p="$(rollout phase)" r="$(rollout blockedReason)"
  [[ "$p" == Blocked && "$r" == ConsumerLagging ]] || { echo "phase '$p', blockedReason '$r'"; return 1; }
  echo "phase Blocked, blockedReason ConsumerLagging: $(rollout blockedMessage)"
}
same_uids() {
  local u
  u="$(broker_uids)"
  [[ "$u" == "$UIDS0" ]] || { echo "broker pods before: $UIDS0; now: $u"; return 1; }
  echo "broker pods unchanged"
}
not_lagging() {
  local c
  c="$(cond Progressing)"
  [[ "$c" != *ConsumerLagging* ]] || { echo "Progressing: $c"; return 1; }
  echo "Progressing: ${c:-absent}"
}

# Restarted brokers catch up slowly: a follower throttle on every replica of the topic.
scenario_slow() {
  local name="$1" mode="$2" image
  say "=== scenario $name: restarted brokers catch up slowly (follower throttle $THROTTLE B/s), rolled by $([[ $mode == sts ]] && echo "the StatefulSet" || echo "the operator")"
  if [[ "$mode" == sts ]]; then
    set_annotation on || return 1
    eventually 60 "$name: with the annotation the StatefulSet rolls itself" strategy_is RollingUpdate || return 1
  else
    needs_operator "$name" || return 0
  fi
  image="$(kq get statefulset "$CLUSTER" -o jsonpath='{.spec.template.spec.containers[0].image}')"
  patch_kc "{\"spec\":{\"config\":{\"follower.replication.throttled.rate\":\"$THROTTLE\"}}}" || return 1
  local out
  out="$(kn patch kafkatopic "$TOPIC" --type merge -p '{"spec":{"config":{"follower.replication.throttled.replicas":"*"}}}' 2>&1)" ||
    fail "$name: throttle every replica of $TOPIC" "$out"
  if ! eventually 45 "$name: every broker throttles its follower fetches at $THROTTLE B/s (a dynamic setting, live)" throttle_in_force "$THROTTLE"; then
    say "the operator's events about it: $(kq get events --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$CLUSTER" \
      -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' | grep -F follower.replication.throttled.rate | sort -u | tr '\n' ';')"
    # The failure is reported; for the rest of the scenario, ask once more (a new value).
    THROTTLE=$((THROTTLE + 1))
    patch_kc "{\"spec\":{\"config\":{\"follower.replication.throttled.rate\":\"$THROTTLE\"}}}" || return 1
    eventually 60 "$name: the throttle in force after asking again ($THROTTLE B/s)" throttle_in_force "$THROTTLE"
  fi
  begin "$mode" "$name" || return 1
  trigger "$(restart_setting_patch)" || return 1
  wait_roll "$image" "$REV0" "$mode"
  record_roll "$name"
  check "$name: every broker pod replaced" all_restarted
  [[ "$mode" == operator ]] && operator_status_checks "$name"
  load_stop "$name" "$mode"
  # The premise of the scenario, reported: some runs see every restarted broker back in the
  # ISR within a fraction of a second of Ready (its catch-up ran before Ready, apparently not
  # held to the follower throttle); the roll's own checks above hold either way.
  if out="$(slow_premise)"; then
    pass "$name: the throttle worked: a restarted broker was Ready at least ${SLOW_MIN}s before it was back in every ISR: $out"
  else
    say "NOTE $name: the premise did not hold in this run ($out): the ISR wait was not exercised beyond Ready"
  fi
  out="$(kn patch kafkatopic "$TOPIC" --type json -p '[{"op":"remove","path":"/spec/config/follower.replication.throttled.replicas"}]' 2>&1)" ||
    fail "$name: remove the topic's throttled replicas" "$out"
  out="$(kn patch kafkacluster "$CLUSTER" --type json -p '[{"op":"remove","path":"/spec/config/follower.replication.throttled.rate"}]' 2>&1)" ||
    fail "$name: remove the follower throttle" "$out"
  [[ "$mode" == sts ]] && set_annotation off
  return 0
}
# slow_premise: the longest time from a broker's Ready to its return to every ISR (the pod watch
# and the ISR samples of the scenario) is at least SLOW_MIN seconds. Runs measured 2.8-3.9 s
# (how long a broker was down decides its backlog); 1 s still shows Ready came before the ISR,
# which is all the premise needs, without failing on a short restart.
SLOW_MIN=1
slow_premise() {
  awk -v min="$SLOW_MIN" '$1 == "interval" && $5 != "-" {if ($5 + 0 > best) {best = $5 + 0; who = $2}}
    END {printf "longest: %s, back in every ISR %.1fs after Ready\n", (who == "" ? "none" : who), best; exit !(best >= min)}' "$SCEN_DIR/intervals"
}
throttle_in_force() {
  local i v all=""
  for i in 0 1 2; do
    v="$(k get --raw "/api/v1/namespaces/$NS/pods/$CLUSTER-$i:9404/proxy/metrics" 2>/dev/null |
      sed -n 's/^samsa_replication_throttle_limit_bytes{side="follower"} //p')"
    all+="$CLUSTER-$i=${v:-?} "
    [[ "$v" == "$1" ]] || { echo "follower throttle limits: $all"; return 1; }
  done
  echo "follower throttle limits: $all"
}

# ---------------------------------------------------------------------------------------------
# Scaling under load: spec.brokers 3 -> 4 (up), then 4 -> 3 (down); the operator moves replicas
# onto the added broker, and off the removed one before the StatefulSet shrinks.

# id_list TEXT: the numbers in TEXT (e.g. "[0,1,2]"), sorted, space-separated.
id_list() { grep -o '[0-9][0-9]*' <<<"$1" | sort -n | paste -sd' '; }
# ts19 TIME: an RFC 3339 time to the second (its first 19 characters), for string comparisons.
ts19() { printf '%s' "${1:0:19}"; }

# set_rebalance NAME: spec.rebalance for the test's data size (tens of MB): throttle
# SCALE_THROTTLE B/s, SCALE_MOVES moves at once. A CRD without spec.rebalance prunes it: FAIL.
set_rebalance() {
  patch_kc "{\"spec\":{\"rebalance\":{\"onScaleUp\":true,\"throttleBytesPerSecond\":$SCALE_THROTTLE,\"maxConcurrentMoves\":$SCALE_MOVES}}}" || return 1
  check "$1: spec.rebalance kept (onScaleUp, throttleBytesPerSecond $SCALE_THROTTLE, maxConcurrentMoves $SCALE_MOVES)" rebalance_spec_kept
  return 0
}
rebalance_spec_kept() {
  local s
  s="$(kc_get '{.spec.rebalance.onScaleUp}|{.spec.rebalance.throttleBytesPerSecond}|{.spec.rebalance.maxConcurrentMoves}')"
  [[ "$s" == "true|$SCALE_THROTTLE|$SCALE_MOVES" ]] || {
    echo "spec.rebalance reads back as '$s' (onScaleUp|throttleBytesPerSecond|maxConcurrentMoves):"
    echo "the KafkaCluster CRD has no spec.rebalance (pruned): an operator without replica rebalancing"
    return 1
  }
  echo "spec.rebalance $s"
}

# The awk function that splits a line of `kclient assignment` ("TOPIC PARTITION LEADER
# REPLICA... isr ISR..."): t, p, leader; replicas r[1..nr] in Metadata's order; ISR s[1..ni].
AWK_ASSIGNMENT='function parse(   i) {
  t = $1; p = $2; leader = $3 + 0; nr = 0; ni = 0
  for (i = 4; i <= NF && $i != "isr"; i++) if ($i != "-") r[++nr] = $i + 0
  for (i++; i <= NF; i++) if ($i != "-") s[++ni] = $i + 0
}'

# assignment_get FILE: the assignment of every topic, internal ones included, from Metadata
# (kclient assignment in the load pod).
assignment_get() {
  local out
  if ! out="$(files assignment -b "$BOOTSTRAP" -timeout 20s 2>&1)"; then
    echo "kclient assignment: $(tail -n 3 <<<"$out")"
    [[ "$out" != *usage:* ]] || echo "(this kclient image has no assignment mode: e2e/build-test-image.sh kclient, then load the image)"
    return 1
  fi
  grep -E '^[^ ]+ [0-9]+ -?[0-9]+ ' <<<"$out" >"$1"
  [[ -s "$1" ]] || { echo "kclient assignment printed no partition: $(head -n 3 <<<"$out")"; return 1; }
}
# assignment_figure FILE: topics, partitions, replicas; replicas and leaders per broker.
assignment_figure() {
  awk "$AWK_ASSIGNMENT"'
    { parse(); parts++; if (!(t in topics)) { topics[t] = 1; nt++ }; lead[leader]++; for (i = 1; i <= nr; i++) { c[r[i]]++; total++ } }
    END {
      for (b = 0; b < 10; b++) if ((b in c) || (b in lead)) { rp = rp sprintf(" %d:%d", b, c[b]); lp = lp sprintf(" %d:%d", b, lead[b]) }
      if (-1 in lead) lp = lp sprintf(" none:%d", lead[-1])
      printf "%d topics, %d partitions, %d replicas; replicas per broker%s; leaders per broker%s\n", nt, parts, total, rp, lp
    }' "$1"
}
# assignment_intact BEFORE: every partition of BEFORE still there with its replication factor
# (the topic $TOPIC: 3), no broker twice in a partition.
assignment_intact() {
  local f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk -v topic="$TOPIC" "$AWK_ASSIGNMENT"'
    FNR == 1 { file++ }
    { parse() }
    file == 1 { rf[t, p] = nr; next }
    {
      after++; seen[t, p] = 1; if (!(t in trf)) { nt++; trf[t] = nr } else if (trf[t] != nr) trf[t] = trf[t] "/" nr
      delete dup
      for (i = 1; i <= nr; i++) { if (r[i] in dup) { if (nd++ < 5) de = de " " t "/" p ":" r[i] }; dup[r[i]] = 1 }
      if (((t, p) in rf) && rf[t, p] != nr) { if (nc++ < 5) ce = ce " " t "/" p ":" rf[t, p] "->" nr }
      if (t == topic && nr != 3) { if (n3++ < 5) te = te " " t "/" p ":" nr }
    }
    END {
      for (k in rf) if (!(k in seen)) { split(k, tp, SUBSEP); if (nm++ < 5) me = me " " tp[1] "/" tp[2] }
      bad = 0
      if (nd) { printf "%d partitions with a broker twice, e.g.%s\n", nd, de; bad = 1 }
      if (nc) { printf "%d partitions changed their replication factor, e.g.%s\n", nc, ce; bad = 1 }
      if (n3) { printf "%d partitions of %s without 3 replicas, e.g.%s\n", n3, topic, te; bad = 1 }
      if (nm) { printf "%d partitions missing from Metadata, e.g.%s\n", nm, me; bad = 1 }
      if (!after) { print "no partition in Metadata"; bad = 1 }
      if (bad) exit 1
      for (tt in trf) rfs = rfs " " tt ":" trf[tt]
      printf "%d partitions of %d topics as before, replication factor%s; no broker twice in a partition\n", after, nt, rfs
    }' "$1" "$f"
}
# replicas_even N [B]: broker B (without B: every broker 0..N-1) holds floor(T/N)..ceil(T/N)
# of the T replicas of all topics, and no broker beyond N-1 holds any.
replicas_even() {
  local n="$1" only="${2:-}" f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk -v n="$n" -v only="$only" "$AWK_ASSIGNMENT"'
    { parse(); for (i = 1; i <= nr; i++) { c[r[i]]++; total++ } }
    END {
      lo = int(total / n); hi = (total % n) ? lo + 1 : lo
      for (b = 0; b < n; b++) { per = per sprintf(" %d:%d", b, c[b]); if ((only == "" || b == only + 0) && (c[b] < lo || c[b] > hi)) bad = 1 }
      for (b in c) if (b + 0 >= n) extra = extra sprintf(" %s:%d", b, c[b])
      printf "%s of %d replicas (its share: %d..%d); replicas per broker%s%s\n", (only == "" ? "every broker holds its share" : "broker " only " holds " (c[only + 0] + 0)), total, lo, hi, per, (extra == "" ? "" : "; beyond broker " n - 1 ":" extra)
      exit (bad || extra != "")
    }' "$f"
}
# leads_share N B: broker B leads at least floor(P/N) of the P partitions of all topics.
leads_share() {
  local n="$1" b="$2" f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk -v n="$n" -v b="$b" "$AWK_ASSIGNMENT"'
    { parse(); parts++; lead[leader]++; if (nr && leader == r[1]) pref++ }
    END {
      want = int(parts / n)
      for (x = 0; x < n; x++) per = per sprintf(" %d:%d", x, lead[x])
      if (-1 in lead) per = per sprintf(" none:%d", lead[-1])
      printf "broker %d leads %d of %d partitions (at least %d); leaders per broker%s; %d led by their preferred (first) replica\n", b, lead[b], parts, want, per, pref
      exit !(lead[b] + 0 >= want)
    }' "$f"
}
# isr_full: every partition of every topic has a leader and all its replicas in its ISR.
isr_full() {
  local f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk "$AWK_ASSIGNMENT"'
    { parse(); parts++
      ok = (leader >= 0 && ni == nr)
      if (ok) { delete in_isr; for (i = 1; i <= ni; i++) in_isr[s[i]] = 1; for (i = 1; i <= nr; i++) if (!(r[i] in in_isr)) ok = 0 }
      if (!ok && bad++ < 5) ex = ex " " $0 ";" }
    END {
      if (bad) { printf "%d of %d partitions without a leader or with a replica out of the ISR, e.g.%s\n", bad, parts, ex; exit 1 }
      printf "all %d partitions led, every replica in the ISR\n", parts
    }' "$f"
}
# none_on B: no partition of any topic names broker B (replica, ISR or leader).
none_on() {
  local f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk -v b="$1" "$AWK_ASSIGNMENT"'
    { parse(); parts++; on = (leader == b + 0)
      for (i = 1; i <= nr; i++) if (r[i] == b + 0) on = 1
      for (i = 1; i <= ni; i++) if (s[i] == b + 0) on = 1
      if (on && n++ < 5) ex = ex " " $0 ";" }
    END {
      if (n) { printf "%d of %d partitions still name broker %d, e.g.%s\n", n, parts, b, ex; exit 1 }
      printf "none of %d partitions names broker %d\n", parts, b
    }' "$f"
}
# holds_replicas B: broker B holds at least one replica.
holds_replicas() {
  local f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk -v b="$1" "$AWK_ASSIGNMENT"'
    { parse(); for (i = 1; i <= nr; i++) { total++; if (r[i] == b + 0) n++ } }
    END { printf "broker %d holds %d of %d replicas\n", b, n, total; exit !(n > 0) }' "$f"
}

# scale_pods N: the StatefulSet at N replicas, N Ready, and the broker pods exactly
# $CLUSTER-0..N-1, each Ready and not being deleted.
scale_pods() {
  local n="$1" sts have want="" i
  sts="$(kq get statefulset "$CLUSTER" -o jsonpath='{.spec.replicas}/{.status.readyReplicas}')"
  have="$(broker_pods | awk -F'|' 'NF {print $1 ":" ($3 == "True" ? "Ready" : "not-Ready") ($6 != "" ? ":deleting" : "")}' | sort | paste -sd' ')"
  for ((i = 0; i < n; i++)); do want+="${want:+ }$CLUSTER-$i:Ready"; done
  [[ "$sts" == "$n/$n" && "$have" == "$want" ]] ||
    { echo "StatefulSet replicas/ready $sts, pods ${have:-none} (want $n/$n: $want)"; return 1; }
  echo "StatefulSet replicas/ready $sts, pods $have"
}
# rebalance_state: "phase|reason|startedAt|partitionsDone|partitionsTotal|bytesMoved|bytesTotal|inProgress|message"
rebalance_state() {
  kc_get '{.status.rebalance.phase}|{.status.rebalance.reason}|{.status.rebalance.startedAt}|{.status.rebalance.partitionsDone}|{.status.rebalance.partitionsTotal}|{.status.rebalance.bytesMoved}|{.status.rebalance.bytesTotal}|{.status.rebalance.inProgress}|{.status.rebalance.message}'
}
# rebalance_of_change REASON STARTED_AT: true when status.rebalance is this change's: reason
# REASON, started at or after the change (to the second).
rebalance_of_change() {
  [[ "$1" == "$REB_REASON" && -n "$2" && ! "$(ts19 "$2")" < "$(ts19 "$TRIGGER_UTC")" ]]
}
# kc_conditions: "type=status reason: message" per condition of the KafkaCluster.
kc_conditions() {
  kc_get '{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
}

# wait_scale NAME N REASON: waits up to SCALE_WAIT seconds for the brokers at N (scale_pods) and
# a rebalance of this change (status.rebalance reason REASON, startedAt at or after the change)
# in phase Complete, printing its phases and its progress every 30 s. It gives up early when no
# rebalance of the change shows SCALE_START_GRACE seconds after the change (ScaleDown: the drain
# comes first) or after the brokers reached N (ScaleUp). Sets SCALE_SECONDS (the change to
# Complete, or "-") and PODS_SECONDS (the change to the brokers at N, or "-").
SCALE_SECONDS=-
PODS_SECONDS=-
REB_REASON=
wait_scale() {
  local name="$1" n="$2" start=$SECONDS pods_at="" seen_at="" phases="" reported=$SECONDS pods_out st why=""
  local phase r started pdone ptotal moved btotal inprog msg
  REB_REASON="$3"
  SCALE_SECONDS=- PODS_SECONDS=-
  while :; do
    if [[ -z "$pods_at" ]] && pods_out="$(scale_pods "$n" 2>&1)"; then
      pods_at=$SECONDS
      PODS_SECONDS="$(since "$TRIGGER_AT")"
      say "$name: the brokers at $n ${PODS_SECONDS}s after the change: $pods_out"
    fi
    st="$(rebalance_state 2>&1)"
    IFS='|' read -r phase r started pdone ptotal moved btotal inprog msg <<<"$st"
    if rebalance_of_change "$r" "$started"; then
      if [[ -z "$seen_at" ]]; then
        seen_at=$SECONDS
        say "$name: status.rebalance: $r started at $started ($(since "$TRIGGER_AT")s after the change)"
      fi
      if [[ " $phases " != *" $phase "* ]]; then
        phases+="${phases:+ }$phase"
        say "$name: status.rebalance phase $phase: partitions $pdone/$ptotal, bytes $moved/$btotal${msg:+: $msg}"
      fi
      if [[ "$phase" == Complete && -n "$pods_at" ]]; then
        SCALE_SECONDS="$(since "$TRIGGER_AT")"
        pass "$name: status.rebalance Complete ($r) ${SCALE_SECONDS}s after the change (phases seen: $phases), the brokers at $n after ${PODS_SECONDS}s"
        return 0
      fi
    fi
    if ((SECONDS - reported >= 30)); then
      reported=$SECONDS
      say "$name: $((SECONDS - start))s: ${pods_out:-brokers at $n}; status.rebalance ${phase:-absent} ${r:--} from ${started:--}: partitions ${pdone:--}/${ptotal:--}, bytes ${moved:--}/${btotal:--}, in progress ${inprog:--}${msg:+: $msg}"
    fi
    if ((SECONDS - start >= SCALE_WAIT)); then
      why="not complete after ${SCALE_WAIT}s"
      break
    fi
    if [[ -z "$seen_at" ]]; then
      local from=$start
      [[ "$REB_REASON" == ScaleUp ]] && from="$pods_at"
      if [[ -n "$from" ]] && ((SECONDS - from >= SCALE_START_GRACE)); then
        why="no rebalance of this change (reason $REB_REASON, startedAt from $TRIGGER_UTC) in status.rebalance ${SCALE_START_GRACE}s after $([[ $REB_REASON == ScaleUp ]] && echo "the brokers reached $n" || echo "the change"): an operator without replica rebalancing?"
        break
      fi
    fi
    sleep 2
  done
  [[ -n "$pods_at" ]] || pods_out="$(scale_pods "$n" 2>&1)"
  fail "$name: status.rebalance Complete ($REB_REASON) within ${SCALE_WAIT}s of the change" \
    "$why"$'\n'"brokers: $pods_out"$'\n'"status.rebalance (phase|reason|startedAt|partitionsDone|partitionsTotal|bytesMoved|bytesTotal|inProgress|message): $st"$'\n'"phases seen: ${phases:-none}"$'\n'"conditions:"$'\n'"$(kc_conditions)"$'\n'"the KafkaCluster's last events:"$'\n'"$(kq get events --sort-by=.lastTimestamp --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$CLUSTER" -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1 | tail -n 8)"
  return 1
}

# rebalance_status_check NAME REASON BROKERS REMOVING NEED_BYTES: status.rebalance after the
# scale: Complete, REASON, brokers [BROKERS], removing [REMOVING], every partition done (more
# than none), bytesMoved > 0 when NEED_BYTES is 1, nothing in progress, started at or after the
# change and finished after it started. Records the figures.
rebalance_status_check() {
  local name="$1" reason="$2" brokers="$3" removing="$4" need_bytes="$5" s
  s="$(kc_get '{.status.rebalance.phase}|{.status.rebalance.reason}|{.status.rebalance.brokers}|{.status.rebalance.removing}|{.status.rebalance.partitionsTotal}|{.status.rebalance.partitionsDone}|{.status.rebalance.bytesTotal}|{.status.rebalance.bytesMoved}|{.status.rebalance.replicaMoves}|{.status.rebalance.inProgress}|{.status.rebalance.startedAt}|{.status.rebalance.finishedAt}|{.status.rebalance.seconds}')"
  local phase r b rm pt pd bt bm moves inprog started finished secs
  IFS='|' read -r phase r b rm pt pd bt bm moves inprog started finished secs <<<"$s"
  FIG[$name,bytes]="${bm:--}"
  FIG[$name,moves]="${moves:--}"
  [[ -z "$secs" ]] || FIG[$name,scale]="${FIG[$name,scale]:--} ($secs)"
  local problems=""
  [[ "$phase" == Complete ]] || problems+="phase '$phase'; "
  [[ "$r" == "$reason" ]] || problems+="reason '$r', expected $reason; "
  [[ "$(id_list "$b")" == "$brokers" ]] || problems+="brokers '$b', expected [$brokers]; "
  [[ "$(id_list "$rm")" == "$removing" ]] || problems+="removing '$rm', expected [$removing]; "
  if ! [[ "$pt" =~ ^[0-9]+$ && "$pd" == "$pt" ]] || ((pt == 0)); then
    problems+="partitionsDone '$pd' of partitionsTotal '$pt' (want equal, more than 0); "
  fi
  if ((need_bytes)) && ! [[ "$bm" =~ ^[0-9]+$ && "$bm" != 0 ]]; then
    problems+="bytesMoved '$bm' (want more than 0); "
  fi
  [[ -z "$inprog" || "$inprog" == "[]" ]] || problems+="inProgress '$inprog'; "
  [[ -n "$started" && -n "$finished" && ! "$(ts19 "$finished")" < "$(ts19 "$started")" ]] ||
    problems+="startedAt '$started', finishedAt '$finished'; "
  [[ -z "$started" || ! "$(ts19 "$started")" < "$(ts19 "$TRIGGER_UTC")" ]] ||
    problems+="startedAt $started before the change at $TRIGGER_UTC; "
  if [[ -z "$problems" ]]; then
    pass "$name: status.rebalance: Complete, $r, brokers [$(id_list "$b")], removing [$(id_list "$rm")], partitions $pd/$pt, bytes $bm/$bt, replicaMoves $moves, $started -> $finished (${secs}s)"
  else
    fail "$name: status.rebalance after the scale (Complete, $reason, brokers [$brokers], removing [$removing], partitionsDone == partitionsTotal > 0$( ((need_bytes)) && echo ", bytesMoved > 0"))" \
      "$problems"$'\n'"phase|reason|brokers|removing|partitionsTotal|partitionsDone|bytesTotal|bytesMoved|replicaMoves|inProgress|startedAt|finishedAt|seconds: $s"$'\n'"message: $(kc_get '{.status.rebalance.message}')"
  fi
}

# events_since REASON: "FIRST|LAST|message" (UTC, to the second) per event REASON on the
# KafkaCluster at or after the change.
events_since() {
  kq get events --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$CLUSTER,reason=$1" \
    -o jsonpath='{range .items[*]}{.eventTime}|{.firstTimestamp}|{.lastTimestamp}|{.series.lastObservedTime}|{.message}{"\n"}{end}' 2>/dev/null |
    awk -F'|' -v t="$(ts19 "$TRIGGER_UTC")" '
      function ts(x) { return match(x, /[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/) ? substr(x, RSTART, 19) : "" }
      { first = ""; last = ""
        for (i = 1; i <= 4; i++) { x = ts($i); if (x == "") continue; if (x >= t && (first == "" || x < first)) first = x; if (x > last) last = x }
        msg = $5; for (i = 6; i <= NF; i++) msg = msg "|" $i
        if (first != "") print first "|" last "|" msg }'
}
# scale_events_check NAME REASON...: each event REASON on the KafkaCluster since the change.
scale_events_check() {
  local name="$1" reason ev missing="" msgs=""
  shift
  for reason in "$@"; do
    ev="$(events_since "$reason")"
    [[ -n "$ev" ]] || missing+=" $reason"
    msgs+="$reason: $(cut -d'|' -f3- <<<"$ev" | sort -u | head -n 3 | paste -sd';')"$'\n'
  done
  if [[ -z "$missing" ]]; then
    pass "$name: events $* since the change"
    printf '%s' "$msgs" | sed 's/^/      /'
  else
    fail "$name: events $* since the change (missing:$missing)" "$msgs"
  fi
}
# deleted_at POD: when POD was deleted (UTC, to the second), from the pod watch: its
# deletionTimestamp less its deletionGracePeriodSeconds.
deleted_at() {
  local dts grace e
  IFS='|' read -r dts grace < <(awk -F'|' -v p="$1" '$2 == p && $5 != "" {print $5 "|" $7; exit}' "$SCEN_DIR/pods")
  [[ -n "$dts" ]] || return 0
  e="$(date -u -d "$dts" +%s 2>/dev/null)" || { ts19 "$dts"; return 0; }
  date -u -d "@$((e - ${grace:-0}))" +%Y-%m-%dT%H:%M:%S
}
# drained_before_delete: $CLUSTER-3 was deleted (deleted_at) no earlier than 1 s before the event
# BrokersDrained (both to the second). The operator shrinks the StatefulSet in the reconcile
# whose Metadata shows broker 3 empty, and records the drain (status, then the event) later in
# that same reconcile, so the two may fall into adjacent seconds either way; a StatefulSet that
# shrank before the drain shows a deletion long before the event (the moves take seconds).
drained_before_delete() {
  local drained deleted d e
  drained="$(events_since BrokersDrained | cut -d'|' -f1 | sort | head -n 1)"
  deleted="$(deleted_at "$CLUSTER-3")"
  [[ -n "$drained" ]] || { echo "no event BrokersDrained since the change${deleted:+ ($CLUSTER-3 deleted at $deleted)}"; return 1; }
  [[ -n "$deleted" ]] || { echo "the pod watch saw no deletion of $CLUSTER-3 (BrokersDrained at $drained)"; return 1; }
  d="$(date -u -d "${drained}Z" +%s)" && e="$(date -u -d "${deleted}Z" +%s)" ||
    { echo "cannot read the times: BrokersDrained '$drained', deleted '$deleted'"; return 1; }
  ((e >= d - 1)) || { echo "$CLUSTER-3 deleted at $deleted, $((d - e))s before BrokersDrained at $drained"; return 1; }
  echo "BrokersDrained at $drained, $CLUSTER-3 deleted at $deleted"
}

# scale_watch_report NAME PODS_FILE: from the pod watch, when $CLUSTER-3 (the added or removed
# broker) was first seen, Ready and deleted, and the most of the other brokers down at once (a
# figure and a NOTE, not a check: the operator's interface does not promise it).
scale_watch_report() {
  local name="$1" out maxdown others extra
  out="$(awk -F'|' -v t0="$TRIGGER_AT" -v extra="$CLUSTER-3" '
    $2 == extra {
      if (seen == "") seen = $1
      if ($4 == "True" && $5 == "" && ready == "") ready = $1
      if ($5 != "" && deleted == "") { deleted = $1; dts = $5; grace = $7 }
      next
    }
    { up = ($4 == "True" && $5 == ""); cur[$2] = up; if (!up) went[$2] = 1
      d = 0; for (x in cur) if (!cur[x]) d++
      if (d > maxd) maxd = d }
    END {
      printf "maxdown %d\n", maxd
      for (x in went) list = list " " x
      printf "others%s\n", list
      printf "extra first seen %s, Ready %s, deleted %s%s\n", (seen == "" ? "never" : sprintf("%+.1fs", seen - t0)), (ready == "" ? "never" : sprintf("%+.1fs", ready - t0)), (deleted == "" ? "never" : sprintf("%+.1fs", deleted - t0)), (dts == "" ? "" : " (deletionTimestamp " dts ", grace " grace " s)")
    }' "$2")"
  maxdown="$(sed -n 's/^maxdown //p' <<<"$out")"
  others="$(sed -n 's/^others *//p' <<<"$out")"
  extra="$(sed -n 's/^extra //p' <<<"$out")"
  FIG[$name,down]="${maxdown:--}"
  say "$name: pod watch: $CLUSTER-3 $extra (from the change)"
  if [[ -n "$others" ]]; then
    say "NOTE $name: brokers that stay went down or not Ready during the scale: $others (at most $maxdown at once)"
  else
    say "$name: none of the brokers that stay went down"
  fi
}

# exporter_check BROKERS: the operator's cluster metrics (its /metrics through the apiserver's
# service proxy) for this cluster under load: kafka_brokers BROKERS, kafka_topic_partitions 6
# for $TOPIC, a leader, replicas, an ISR and a log end offset for each of its 6 partitions,
# group $GROUP's committed offset and lag (>= 0) on each, its status series, and no offline
# partition.
exporter_check() {
  local want="$1" f="$TMP/operator-metrics"
  k get --raw "/api/v1/namespaces/$OP_NS/services/$FULLNAME-metrics:metrics/proxy/metrics" >"$f" 2>&1 ||
    { echo "GET the operator's /metrics: $(head -n 3 "$f")"; return 1; }
  awk -v ns="$NS" -v c="$CLUSTER" -v t="$TOPIC" -v g="$GROUP" -v want="$want" '
    function lab(l,   m) { if (match($0, l "=\"[^\"]*\"")) return substr($0, RSTART + length(l) + 2, RLENGTH - length(l) - 3); return "" }
    /^#/ || lab("namespace") != ns || lab("cluster") != c { next }
    { name = $1; sub(/\{.*/, "", name); v = $NF }
    name == "kafka_brokers" { brokers = v }
    name == "kafka_topic_partitions" && lab("topic") == t { parts = v }
    lab("topic") == t && name ~ /^kafka_topic_partition_(leader|replicas|in_sync_replica|current_offset)$/ { n[name]++ }
    lab("consumergroup") == g && lab("topic") == t && name == "kafka_consumergroup_current_offset" { committed++ }
    lab("consumergroup") == g && lab("topic") == t && name == "kafka_consumergroup_lag" { lags++; if (v < 0) neg++; lag += v }
    lab("consumergroup") == g && name == "samsa_consumergroup_status" { status = lab("status") "/" lab("reason") }
    name == "samsa_partitions_offline" { offline = v }
    END {
      printf "kafka_brokers %s; %s: %s partitions, leader/replicas/isr/offset series %d/%d/%d/%d; group %s: %d committed, %d lags (sum %d), status %s; offline %s\n",
        brokers, t, parts, n["kafka_topic_partition_leader"], n["kafka_topic_partition_replicas"], n["kafka_topic_partition_in_sync_replica"], n["kafka_topic_partition_current_offset"],
        g, committed, lags, lag, (status == "" ? "none" : status), offline
      ok = (brokers == want && parts == 6 && n["kafka_topic_partition_leader"] == 6 && n["kafka_topic_partition_replicas"] == 6 &&
            n["kafka_topic_partition_in_sync_replica"] == 6 && n["kafka_topic_partition_current_offset"] == 6 &&
            committed == 6 && lags == 6 && !neg && status != "" && offline == "0")
      exit !ok
    }' "$f"
}

# health_status_check: status.health written by the operator's poll (observedAt, no offline
# partition, counts as numbers), and `kubectl get kc` showing its columns.
health_status_check() {
  local h row
  h="$(kc_get '{.status.health.underReplicated}|{.status.health.underMinIsr}|{.status.health.atMinIsr}|{.status.health.offline}|{.status.health.groupsNotOk}|{.status.health.observedAt}')"
  row="$(kq get kafkacluster "$CLUSTER" 2>&1)"
  [[ "$h" =~ ^[0-9]+\|[0-9]+\|[0-9]+\|0\|[0-9]+\|.+ ]] || { echo "status.health (underReplicated|underMinIsr|atMinIsr|offline|groupsNotOk|observedAt): '$h'"; return 1; }
  grep -q 'UNDER-REPLICATED *OFFLINE *GROUPS-NOT-OK' <<<"$row" || { echo "kubectl get kc: $row"; return 1; }
  echo "status.health $h; kubectl get kc:"$'\n'"$row"
}

# Scale-up under load: spec.brokers 3 -> 4. The StatefulSet grows at once; once broker 3 is
# Ready the operator moves replicas of every topic onto it and elects the preferred leaders.
scenario_scale_up() {
  local name=up cur
  say "=== scenario up: spec.brokers 3 -> 4 under load (spec.rebalance: $SCALE_THROTTLE B/s, $SCALE_MOVES moves at once)"
  cur="$(kc_get '{.spec.brokers}')"
  [[ "$cur" == 3 ]] || { fail "up: the cluster has 3 brokers before the scale-up" "spec.brokers is '$cur'"; return 1; }
  set_rebalance up || return 1
  LOAD_BROKERS="0 1 2 3"
  begin scale up || return 1
  local before="$SCEN_DIR/assignment.before" out
  out="$(assignment_get "$before" 2>&1)" || { fail "up: the assignment before the scale-up (kclient assignment)" "$out"; return 1; }
  say "up: before: $(assignment_figure "$before")"
  trigger '{"spec":{"brokers":4}}' || return 1
  wait_scale up 4 ScaleUp
  FIG[up,scale]="$SCALE_SECONDS"
  check "up: the StatefulSet at 4 replicas, $CLUSTER-0..3 Ready" scale_pods 4
  rebalance_status_check up ScaleUp "0 1 2 3" "" 1
  scale_events_check up RebalanceStarted RebalanceComplete
  eventually 30 "up: every partition of every topic as before, no broker twice in a partition" assignment_intact "$before"
  eventually 30 "up: broker 3 holds its share of all replicas" replicas_even 4 3
  eventually 30 "up: every broker holds its share of all replicas" replicas_even 4
  eventually 60 "up: broker 3 leads its share of all partitions (preferred leaders elected)" leads_share 4 3
  eventually 60 "up: every partition led, every replica in its ISR" isr_full
  [[ -s "$SCEN_DIR/assignment" ]] && say "up: after: $(assignment_figure "$SCEN_DIR/assignment")"
  eventually 45 "up: the operator's cluster metrics for $CLUSTER (kafka_exporter names, lag, group status)" exporter_check 4
  eventually 45 "up: status.health from the operator's poll, and its kubectl get columns" health_status_check
  load_stop up scale
}

# Scale-down under load: spec.brokers 4 -> 3. The StatefulSet stays at 4 while broker 3 is
# drained (its replicas moved to 0..2), then shrinks. Runs after `up`; when the cluster is not
# at 4 Ready brokers (up did not run, or did not get that far) it scales to 4 first, without
# load and without checks but that the brokers become Ready.
scenario_scale_down() {
  local name=down cur
  say "=== scenario down: spec.brokers 4 -> 3 under load: broker 3 drained, then removed"
  set_rebalance down || return 1
  cur="$(kc_get '{.spec.brokers}')"
  if [[ "$cur" != 4 ]] || ! scale_pods 4 >/dev/null 2>&1; then
    say "down: the cluster is not at 4 Ready brokers (spec.brokers $cur; scenario up did not run or did not get that far): scaling to 4 first, without load"
    TRIGGER_AT="$(now)"
    TRIGGER_UTC="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    patch_kc '{"spec":{"brokers":4}}' || return 1
    eventually "$SCALE_WAIT" "down: (preparation) the StatefulSet at 4 replicas, $CLUSTER-0..3 Ready" scale_pods 4 || return 1
    # The scale-up's rebalance, bounded as in wait_scale (given up after SCALE_START_GRACE s
    # without one).
    local start=$SECONDS st phase r started seen=0
    REB_REASON=ScaleUp
    while ((SECONDS - start < SCALE_WAIT)); do
      st="$(rebalance_state 2>&1)"
      IFS='|' read -r phase r started _ <<<"$st"
      if rebalance_of_change "$r" "$started"; then
        seen=1
        [[ "$phase" == Complete ]] && break
      fi
      ((seen || SECONDS - start < SCALE_START_GRACE)) || break
      sleep 2
    done
    if [[ "$phase" == Complete ]] && rebalance_of_change "$r" "$started"; then
      say "down: (preparation) the scale-up's rebalance Complete after $((SECONDS - start))s"
    else
      say "NOTE down: (preparation) no complete rebalance of the scale-up after $((SECONDS - start))s: status.rebalance (phase|reason|startedAt|...) $st"
    fi
  fi
  LOAD_BROKERS="0 1 2 3"
  begin scale down || return 1
  local before="$SCEN_DIR/assignment.before" out
  out="$(assignment_get "$before" 2>&1)" || { fail "down: the assignment before the scale-down (kclient assignment)" "$out"; return 1; }
  say "down: before: $(assignment_figure "$before")"
  check "down: broker 3 holds replicas before the scale-down (something to drain)" holds_replicas 3
  trigger '{"spec":{"brokers":3}}' || return 1
  wait_scale down 3 ScaleDown
  FIG[down,scale]="$SCALE_SECONDS"
  check "down: the StatefulSet at 3 replicas, $CLUSTER-0..2 Ready, $CLUSTER-3 gone" scale_pods 3
  rebalance_status_check down ScaleDown "0 1 2" "3" 0
  scale_events_check down RebalanceStarted BrokersDrained RebalanceComplete
  check "down: $CLUSTER-3 deleted only once broker 3 was drained (not before BrokersDrained, to the second, 1 s slack)" drained_before_delete
  eventually 30 "down: every partition of every topic as before, no broker twice in a partition" assignment_intact "$before"
  eventually 30 "down: no partition names broker 3 (replica, ISR or leader)" none_on 3
  eventually 60 "down: every partition led, every replica in its ISR again" isr_full
  [[ -s "$SCEN_DIR/assignment" ]] && say "down: after: $(assignment_figure "$SCEN_DIR/assignment")"
  load_stop down scale
}

# ---------------------------------------------------------------------------------------------
# Blue-green under load: spec.version changes with spec.upgrade.strategy BlueGreen. A second
# StatefulSet comes up at the new version with broker ids of its own, every partition moves to
# it, leadership follows, a verification window passes, the quorum's voters move, and the old
# set is deleted (bluegreen); or, before promotion, the spec's version goes back and the data
# moves back to the old brokers, which never stopped (rollback).

# active_set: the StatefulSet whose pods are the brokers (status.brokerSet, else $CLUSTER).
active_set() {
  local s
  s="$(kc_get '{.status.brokerSet.name}' 2>/dev/null)"
  printf '%s' "${s:-$CLUSTER}"
}
# set_stayed_up PODS_FILE: from the pod watch, no pod of $BG_FROM went not-Ready unless being
# deleted, and no pod of $BG_TO went not-Ready after it first was Ready unless being deleted;
# FIG[down] counts the brokers down at once outside of those.
set_stayed_up() {
  awk -F'|' -v from="$BG_FROM-" -v to="$BG_TO-" '
    function of(set) { return index($2, set) == 1 && substr($2, length(set) + 1) ~ /^[0-9]+$/ }
    of(from) || of(to) {
      if ($5 != "") { gone[$2] = 1; next }
      if ($4 == "True") { up[$2] = 1; next }
      if ((of(from) || up[$2]) && !($2 in gone) && n++ < 5) ex = ex " " $2
    }
    END {
      if (n) { printf "%d times a broker went not Ready without being deleted, e.g.%s\n", n, ex; exit 1 }
      printf "no broker of %s or %s went down but by the deletion of its set\n", substr(from, 1, length(from) - 1), substr(to, 1, length(to) - 1)
    }' "$1"
}
# upgrade_state: "phase|partitionsDone|partitionsTotal|bytesMoved|bytesTotal|message"
upgrade_state() {
  kc_get '{.status.upgrade.phase}|{.status.upgrade.partitionsDone}|{.status.upgrade.partitionsTotal}|{.status.upgrade.bytesMoved}|{.status.upgrade.bytesTotal}|{.status.upgrade.startedAt}|{.status.upgrade.message}'
}
# wait_upgrade NAME PHASE: waits up to SCALE_WAIT seconds for status.upgrade of this change
# (startedAt at or after the change) in PHASE, printing each phase seen and the progress every
# 30 s. Sets UPGRADE_SECONDS.
UPGRADE_SECONDS=-
BG_FROM= BG_TO=
wait_upgrade() {
  local name="$1" want="$2" start=$SECONDS reported=$SECONDS phases="" st
  local phase pd pt bm bt started msg
  UPGRADE_SECONDS=-
  while :; do
    st="$(upgrade_state 2>&1)"
    IFS='|' read -r phase pd pt bm bt started msg <<<"$st"
    if [[ -n "$started" && ! "$(ts19 "$started")" < "$(ts19 "$TRIGGER_UTC")" ]]; then
      if [[ " $phases " != *" $phase "* ]]; then
        phases+="${phases:+ }$phase"
        say "$name: status.upgrade phase $phase $(since "$TRIGGER_AT")s after the change: partitions ${pd:-0}/${pt:-0}, bytes ${bm:-0}/${bt:-0}${msg:+: $msg}"
      fi
      if [[ "$phase" == "$want" ]]; then
        UPGRADE_SECONDS="$(since "$TRIGGER_AT")"
        pass "$name: status.upgrade $want ${UPGRADE_SECONDS}s after the change (phases seen: $phases)"
        return 0
      fi
    fi
    if ((SECONDS - reported >= 30)); then
      reported=$SECONDS
      say "$name: $((SECONDS - start))s: status.upgrade ${phase:-absent}: partitions ${pd:--}/${pt:--}, bytes ${bm:--}/${bt:--}${msg:+: $msg}"
    fi
    if ((SECONDS - start >= SCALE_WAIT)); then
      fail "$name: status.upgrade $want within ${SCALE_WAIT}s of the change" \
        "status.upgrade (phase|partitionsDone|partitionsTotal|bytesMoved|bytesTotal|startedAt|message): $st"$'\n'"phases seen: ${phases:-none}"$'\n'"conditions:"$'\n'"$(kc_conditions)"$'\n'"the KafkaCluster's last events:"$'\n'"$(kq get events --sort-by=.lastTimestamp --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$CLUSTER" -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1 | tail -n 10)"
      return 1
    fi
    sleep 2
  done
}
# set_pods SET N IMAGE: StatefulSet SET at N replicas, N Ready, its pods SET-0..N-1 Ready on IMAGE.
set_pods() {
  local set="$1" n="$2" image="$3" sts have want="" i
  sts="$(kq get statefulset "$set" -o jsonpath='{.spec.replicas}/{.status.readyReplicas}')"
  have="$(broker_pods | awk -F'|' -v s="$set-" 'index($1, s) == 1 && $1 ~ /-[0-9]+$/ && substr($1, length(s) + 1) ~ /^[0-9]+$/ {print $1 ":" ($3 == "True" ? "Ready" : "not-Ready") ($6 != "" ? ":deleting" : "") ":" $5}' | sort | paste -sd' ')"
  for ((i = 0; i < n; i++)); do want+="${want:+ }$set-$i:Ready:$image"; done
  [[ "$sts" == "$n/$n" && "$have" == "$want" ]] ||
    { echo "StatefulSet $set replicas/ready $sts, pods ${have:-none} (want $n/$n: $want)"; return 1; }
  echo "StatefulSet $set replicas/ready $sts, pods $have"
}
# set_gone SET N: no StatefulSet SET, no pod SET-0..N-1, no volume claim data-SET-0..N-1.
set_gone() {
  local set="$1" n="$2" left="" i
  kq get statefulset "$set" >/dev/null 2>&1 && left+=" statefulset/$set"
  for ((i = 0; i < n; i++)); do
    kq get pod "$set-$i" >/dev/null 2>&1 && left+=" pod/$set-$i"
    kq get pvc "data-$set-$i" >/dev/null 2>&1 && left+=" pvc/data-$set-$i"
  done
  [[ -z "$left" ]] || { echo "still there:$left"; return 1; }
  echo "StatefulSet $set, its $n pods and their volume claims are gone"
}
# on_brokers IDS: every replica of every topic on the brokers IDS, each holding floor..ceil of
# the replicas and leading at least floor(partitions / count).
on_brokers() {
  local f="$SCEN_DIR/assignment"
  assignment_get "$f" || return 1
  awk -v ids="$1" "$AWK_ASSIGNMENT"'
    BEGIN { n = split(ids, want, " "); for (i = 1; i <= n; i++) ok[want[i]] = 1 }
    { parse(); parts++; lead[leader]++; for (i = 1; i <= nr; i++) { c[r[i]]++; total++; if (!(r[i] in ok) && nx++ < 5) ex = ex " " t "/" p ":" r[i] } }
    END {
      lo = int(total / n); hi = (total % n) ? lo + 1 : lo; minlead = int(parts / n)
      for (i = 1; i <= n; i++) { b = want[i]; per = per sprintf(" %s:%d/%d", b, c[b], lead[b]); if (c[b] < lo || c[b] > hi || lead[b] < minlead) bad = 1 }
      printf "%d replicas of %d partitions; replicas/leaders per broker%s (share %d..%d, leading at least %d)%s\n", total, parts, per, lo, hi, minlead, (nx ? "; " nx " replicas elsewhere, e.g." ex : "")
      exit (bad || nx)
    }' "$f"
}
# upgrade_status_check NAME PHASE FROM TO FROM_IDS TO_IDS: status.upgrade after the change.
upgrade_status_check() {
  local name="$1" want="$2" from="$3" to="$4" from_ids="$5" to_ids="$6" s
  s="$(kc_get '{.status.upgrade.phase}|{.status.upgrade.from.name}|{.status.upgrade.to.name}|{.status.upgrade.fromIds}|{.status.upgrade.toIds}|{.status.upgrade.partitionsTotal}|{.status.upgrade.partitionsDone}|{.status.upgrade.bytesTotal}|{.status.upgrade.bytesMoved}|{.status.upgrade.startedAt}|{.status.upgrade.finishedAt}|{.status.upgrade.seconds}')"
  local phase f t fi ti pt pd bt bm started finished secs problems=""
  IFS='|' read -r phase f t fi ti pt pd bt bm started finished secs <<<"$s"
  FIG[$name,bytes]="${bm:--}"
  FIG[$name,scale]="${FIG[$name,scale]:--} (${secs:--})"
  [[ "$phase" == "$want" ]] || problems+="phase '$phase', expected $want; "
  [[ "$f" == "$from" && "$t" == "$to" ]] || problems+="from '$f' to '$t', expected $from to $to; "
  [[ "$(id_list "$fi")" == "$from_ids" && "$(id_list "$ti")" == "$to_ids" ]] || problems+="fromIds '$fi' toIds '$ti'; "
  if ! [[ "$pt" =~ ^[0-9]+$ && "$pd" == "$pt" ]] || ((pt == 0)); then problems+="partitionsDone '$pd' of '$pt'; "; fi
  [[ "$bm" =~ ^[0-9]+$ && "$bm" != 0 ]] || problems+="bytesMoved '$bm' (want more than 0); "
  [[ -n "$started" && -n "$finished" && -n "$secs" ]] || problems+="startedAt '$started' finishedAt '$finished' seconds '$secs'; "
  if [[ -z "$problems" ]]; then
    pass "$name: status.upgrade: $phase, $f [$(id_list "$fi")] -> $t [$(id_list "$ti")], partitions $pd/$pt, bytes $bm/$bt, $started -> $finished (${secs}s)"
  else
    fail "$name: status.upgrade ($want, $from -> $to)" "$problems"$'\n'"$s"$'\n'"message: $(kc_get '{.status.upgrade.message}')"
  fi
}
voters_are() {
  local v
  v="$(kc_get '{.status.quorumVoters}')"
  [[ "$(grep -o '\(^\|,\)[0-9]*@' <<<"$v" | tr -dc '0-9\n' | sort -n | paste -sd' ')" == "$1" ]] ||
    { echo "status.quorumVoters '$v' (want ids $1)"; return 1; }
  echo "status.quorumVoters $v"
}
set_blue_green() {
  patch_kc "{\"spec\":{\"upgrade\":{\"strategy\":\"BlueGreen\",\"blueGreen\":{\"throttleBytesPerSecond\":$SCALE_THROTTLE,\"verifySeconds\":$1,\"promotion\":\"Automatic\"}},\"rebalance\":{\"maxConcurrentMoves\":$SCALE_MOVES}}}"
}

scenario_bluegreen() {
  local name=bluegreen from to version image before
  say "=== scenario bluegreen: spec.version changes under spec.upgrade.strategy BlueGreen: a second broker set, the data moved, verified ($BG_VERIFY s), promoted"
  needs_operator bluegreen || return 0
  set_blue_green "$BG_VERIFY" || return 1
  from="$(active_set)"
  [[ "$from" == "$CLUSTER" ]] || { fail "bluegreen: starts from the first broker set" "status.brokerSet is '$from'"; return 1; }
  to="$CLUSTER-g1"
  BG_FROM="$from" BG_TO="$to"
  LOAD_BROKERS="0 1 2 g1-0 g1-1 g1-2"
  begin scale bluegreen || return 1
  before="$SCEN_DIR/assignment.before"
  assignment_get "$before" >/dev/null 2>&1 || { fail "bluegreen: the assignment before (kclient assignment)"; return 1; }
  version="$(other_version)"
  image="$BROKER_REPO:$version"
  trigger "{\"spec\":{\"version\":\"$version\"}}" || return 1
  wait_upgrade bluegreen Done
  FIG[bluegreen,scale]="$UPGRADE_SECONDS"
  upgrade_status_check bluegreen Done "$from" "$to" "0 1 2" "1000 1001 1002"
  check "bluegreen: status.brokerSet is $to" eval '[[ "$(active_set)" == "$to" ]] && echo "status.brokerSet $to" || { echo "status.brokerSet $(active_set)"; false; }'
  eventually 60 "bluegreen: $to at 3 replicas, its pods Ready on $image" set_pods "$to" 3 "$image"
  eventually 90 "bluegreen: the old broker set ($from) deleted with its pods and volume claims" set_gone "$from" 3
  check "bluegreen: the quorum's voters are the new brokers (status.quorumVoters)" voters_are "1000 1001 1002"
  scale_events_check bluegreen BlueGreenStarted BlueGreenProvisioned BlueGreenMoved BlueGreenPromoting VoterAdded VoterRemoved BrokerSetDeleted BlueGreenPromoted
  eventually 30 "bluegreen: every partition of every topic as before, no broker twice in a partition" assignment_intact "$before"
  eventually 60 "bluegreen: every replica on brokers 1000-1002, each with its share of replicas and leaders" on_brokers "1000 1001 1002"
  eventually 60 "bluegreen: every partition led, every replica in its ISR" isr_full
  load_stop bluegreen bluegreen
}

scenario_rollback() {
  local name=rollback from to version back image uids0
  say "=== scenario rollback: a blue-green upgrade rolled back before its promotion (spec.version reverted while verifying)"
  needs_operator rollback || return 0
  # A long window: the upgrade is still verifying when the spec goes back.
  set_blue_green 3600 || return 1
  from="$(active_set)"
  case "$from" in
    "$CLUSTER") to="$CLUSTER-g1"; LOAD_BROKERS="0 1 2 g1-0 g1-1 g1-2" ;;
    "$CLUSTER-g1") to="$CLUSTER-g2"; LOAD_BROKERS="g1-0 g1-1 g1-2 g2-0 g2-1 g2-2" ;;
    *) fail "rollback: a known broker set to start from" "status.brokerSet is '$from'"; return 1 ;;
  esac
  BG_FROM="$from" BG_TO="$to"
  local from_ids to_ids
  from_ids="$(kc_get '{.status.brokers[*].id}' | tr ' ' '\n' | sort -n | paste -sd' ')"
  to_ids="$( [[ "$to" == "$CLUSTER-g1" ]] && echo "1000 1001 1002" || echo "2000 2001 2002")"
  begin scale rollback || return 1
  local before="$SCEN_DIR/assignment.before"
  assignment_get "$before" >/dev/null 2>&1 || { fail "rollback: the assignment before (kclient assignment)"; return 1; }
  back="$(kc_get '{.spec.version}')"
  image="$BROKER_REPO:$back"
  uids0="$(broker_pods | awk -F'|' -v s="$from-" 'index($1, s) == 1 && substr($1, length(s) + 1) ~ /^[0-9]+$/ {print $1 "|" $2}' | sort | paste -sd' ')"
  version="$(other_version)"
  trigger "{\"spec\":{\"version\":\"$version\"}}" || return 1
  wait_upgrade rollback Verifying || return 1
  say "rollback: the data is on $to; reverting spec.version to $back"
  patch_kc "{\"spec\":{\"version\":\"$back\"}}" || return 1
  wait_upgrade rollback RolledBack
  FIG[rollback,scale]="$UPGRADE_SECONDS"
  upgrade_status_check rollback RolledBack "$from" "$to" "$from_ids" "$to_ids"
  check "rollback: status.brokerSet still $from" eval '[[ "$(active_set)" == "$from" ]] && echo "status.brokerSet $from" || { echo "status.brokerSet $(active_set)"; false; }'
  eventually 90 "rollback: the new broker set ($to) deleted with its pods and volume claims" set_gone "$to" 3
  check "rollback: $from at 3 replicas, its pods Ready on $image" set_pods "$from" 3 "$image"
  check "rollback: the old brokers never restarted (same pods)" eval '[[ "$(broker_pods | awk -F"|" -v s="$from-" '"'"'index($1, s) == 1 && substr($1, length(s) + 1) ~ /^[0-9]+$/ {print $1 "|" $2}'"'"' | sort | paste -sd" ")" == "$uids0" ]] && echo "pods $uids0" || { echo "pods were $uids0"; false; }'
  scale_events_check rollback BlueGreenStarted BlueGreenRollingBack BlueGreenRolledBack
  eventually 30 "rollback: every partition of every topic as before, no broker twice in a partition" assignment_intact "$before"
  eventually 60 "rollback: every replica back on brokers $from_ids, each with its share of replicas and leaders" on_brokers "$from_ids"
  eventually 60 "rollback: every partition led, every replica in its ISR" isr_full
  load_stop rollback bluegreen
}

# ---------------------------------------------------------------------------------------------
# The figures, side by side
print_table() {
  ((${#SCENARIOS_RUN[@]})) || return 0
  echo
  echo "Rolls and scaling under load ($RATE records/s of $SIZE B, $MEMBERS group members):"
  local row s
  printf '  %-30s' figure
  for s in "${SCENARIOS_RUN[@]}"; do printf ' | %-26s' "$s"; done
  echo
  for row in "${FIG_ROWS[@]}"; do
    printf '  %-30s' "${FIG_LABEL[$row]}"
    for s in "${SCENARIOS_RUN[@]}"; do printf ' | %-26s' "${FIG[$s,$row]:--}"; done
    echo
  done
  echo "  (baseline: the StatefulSet's RollingUpdate; restart s: broker:seconds down, * the quorum leader when it went down;"
  echo "   consumer lag: records behind / the oldest record's age when read, ms, producer stalls included;"
  echo "   scale: the patch of spec.brokers to status.rebalance Complete, (status.rebalance.seconds);"
  echo "   max brokers down for up/down: of the brokers that stay, the added or removed one not counted)"
}

# ---------------------------------------------------------------------------------------------
# Setup: the operator, the KafkaCluster, the topic
say "KUBECONFIG=$KUBECONFIG, namespace $NS, scenarios: ${SCENARIOS[*]}; $RATE records/s of $SIZE B"
check "apiserver /readyz" k get --raw /readyz || stop
for s in "${SCENARIOS[@]}"; do
  case $s in metrics | baseline | baseline-6 | [1-6] | up | down | bluegreen | rollback | security) ;; *) fatal "SAMSA_E2E_ROLL_SCENARIOS: unknown scenario '$s' (metrics baseline 1 2 3 4 5 6 baseline-6 up down bluegreen rollback security)" ;; esac
done
out="$(k create namespace "$NS" 2>&1)" || fatal "create namespace $NS" "$out"
if ((OWN_OPERATOR)); then
  [[ -n "$HELM" ]] || fatal "helm" "no helm (e2e/build-binaries.sh helm)"
  k get crd kafkaclusters.samsa.dev >/dev/null 2>&1 && CRDS_EXISTED=1
  out="$(k create namespace "$OP_NS" 2>&1)" || fatal "create namespace $OP_NS" "$out"
  helm_args=(install "$RELEASE" "$ROOT/charts/samsa-operator" --namespace "$OP_NS")
  for s in ${SAMSA_E2E_HELM_SET:-}; do helm_args+=(--set "$s"); done
  out="$(timeout 120 "$HELM" "${helm_args[@]}" 2>&1)" || fatal "helm ${helm_args[*]}" "$out"
  INSTALLED=1
  check "helm install $RELEASE -n $OP_NS; operator Available" ko wait "deployment/$FULLNAME" --for=condition=Available --timeout="${WAIT}s" || stop
else
  check "the operator in $OP_NS is Available" ko wait "deployment/$FULLNAME" --for=condition=Available --timeout=60s || stop
fi

check "$BROKER_REPO:$VERSION_B: a second tag of $BROKER_REPO:$VERSION_A on the nodes" tag_image "$BROKER_REPO:$VERSION_A" "$BROKER_REPO:$VERSION_B" || stop

start=$SECONDS
out="$(kn apply -f - 2>&1 <<EOF
apiVersion: samsa.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: $CLUSTER
spec:
  brokers: 3
  version: "$VERSION_A"
  storage: {size: 1Gi}
  resources:
    requests: {cpu: 100m, memory: 256Mi}
    limits: {memory: 1Gi}
  config:
    default.replication.factor: "3"
    min.insync.replicas: "2"
    offsets.topic.replication.factor: "3"
    auto.create.topics.enable: "false"
    group.initial.rebalance.delay.ms: "0"   # each scenario's group members join at once
  terminationGracePeriodSeconds: 60
---
apiVersion: samsa.dev/v1alpha1
kind: KafkaTopic
metadata:
  name: $TOPIC
spec:
  clusterRef: {name: $CLUSTER}
  partitions: 6
  replicationFactor: 3
  config:
    min.insync.replicas: "2"
EOF
)" || fatal "kubectl apply the KafkaCluster $CLUSTER and the KafkaTopic $TOPIC" "$out"
check "KafkaCluster $CLUSTER Ready" kn wait "kafkacluster/$CLUSTER" --for=condition=Ready --timeout="${WAIT}s" || stop
check "KafkaTopic $TOPIC Ready" kn wait "kafkatopic/$TOPIC" --for=condition=Ready --timeout=120s || stop
say "cluster and topic Ready after $((SECONDS - start))s"
if [[ "$(update_strategy)" == OnDelete ]]; then
  OPERATOR_ROLLS=1
  say "the operator rolls the brokers itself (StatefulSet updateStrategy OnDelete)"
else
  say "this operator leaves the roll to the StatefulSet (updateStrategy $(update_strategy)): the operator's scenarios are skipped"
fi

for s in "${SCENARIOS[@]}"; do
  case $s in
    metrics) scenario_metrics ;;
    baseline) scenario_version baseline sts ;;
    1) scenario_version 1 operator ;;
    2) scenario_setting 2 ;;
    3) scenario_bad_image ;;
    4) scenario_setting 4 kill-operator ;;
    5) scenario_consumer ;;
    6) scenario_slow 6 operator ;;
    baseline-6) scenario_slow baseline-6 sts ;;
    up) scenario_scale_up ;;
    down) scenario_scale_down ;;
    bluegreen) scenario_bluegreen ;;
    rollback) scenario_rollback ;;
    security) scenario_security ;;
  esac
  stop_watch
  LOAD_BROKERS="0 1 2"
  if [[ -n "$LOAD_POD" ]]; then
    kn delete pod "$LOAD_POD" --wait=false --ignore-not-found >/dev/null 2>&1
    LOAD_POD=
  fi
done
print_table
