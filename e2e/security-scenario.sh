# Scenario `security` of e2e/roll-test.sh (sourced by it): a secured KafkaCluster of its own,
# its KafkaUsers, and a forced certificate renewal rolled by the operator under an
# authenticated load.
#
# Setup, in the test namespace: KafkaCluster $SEC_CLUSTER (3 brokers) with a TLS + SCRAM
# listener `scram` (SASL_SSL, SCRAM-SHA-512) and a mutual-TLS listener `tls` (SSL, client
# certificates from the clients CA), `authorization: {type: simple}`; KafkaTopic $SEC_TOPIC;
# KafkaUsers alice (scram-sha-512: Read, Write, Describe on the topic; Read, Describe on the
# group prefix secure-), mallory (scram-sha-512, no ACLs) and bob (tls: Write, Describe on the
# topic). Client pods run kclient with the KCLIENT_* settings from each user's Secret
# (env valueFrom.secretKeyRef for the password, the Secret mounted for ca.crt, user.crt,
# user.key).
# Checks (PASS/FAIL each):
#   - the cluster Ready; its certificate Secrets; the users Ready with their Secrets' keys;
#   - the NetworkPolicy: the controller and replication ports only from the cluster's broker
#     pods, CONTROLPLANE (9091) only from the operator's pods (the object only: e2e/cluster
#     runs no NetworkPolicy enforcement);
#   - mallory's produce refused with TOPIC_AUTHORIZATION_FAILED, and her consume;
#   - bob produces over mutual TLS and reads his records back;
#   - under alice's load (an idempotent acks=all producer and a consumer group, over SASL_SSL):
#     the annotation samsa.dev/renew-certificates re-issues every broker certificate (the
#     broker-certs Secret's certificates all differ, samsa.dev/certs-generation bumped, event
#     CertificatesRenewed), the pod template's samsa.dev/tls-hash changes, the operator rolls
#     the brokers (each replaced exactly once, never two down, each after the previous is back
#     in every ISR, status.rollout Complete); the producer reports 0 delivery errors (the
#     retried ones named), every acknowledged record is read by the group, the ISR never below
#     min.insync.replicas; the figures (stall, records, roll time) go to the table.
# The KafkaUsers, the topic and the cluster are deleted at the end (sec_cleanup, also from the
# roll test's cleanup).

SEC_CLUSTER=secure
SEC_TOPIC=payments
SEC_GROUP=secure-payments
SEC_SCRAM_PORT=9095
SEC_TLS_PORT=9093
SEC_CONTROLLER_PORT=9193
SEC_REPLICATION_PORT=9194
SEC_RENEW_ANNOTATION=samsa.dev/renew-certificates
SEC_TLS_HASH=samsa.dev/tls-hash
SEC_GENERATION=samsa.dev/certs-generation
SEC_CREATED=0
SEC_SAVED=()

# sec_enter / sec_leave: the roll test's helpers (load_stop, wait_roll, watch_check...) work on
# CLUSTER, TOPIC, GROUP and BOOTSTRAP; the scenario points them at its own cluster, then back.
sec_enter() {
  SEC_SAVED=("$CLUSTER" "$TOPIC" "$GROUP" "$BOOTSTRAP")
  CLUSTER=$SEC_CLUSTER TOPIC=$SEC_TOPIC GROUP=$SEC_GROUP
  BOOTSTRAP="$SEC_CLUSTER-bootstrap.$NS.svc:$SEC_SCRAM_PORT"
}
sec_leave() {
  ((${#SEC_SAVED[@]})) || return 0
  CLUSTER="${SEC_SAVED[0]}" TOPIC="${SEC_SAVED[1]}" GROUP="${SEC_SAVED[2]}" BOOTSTRAP="${SEC_SAVED[3]}"
  SEC_SAVED=()
}

# sec_cleanup: the users first (their finalizer needs the cluster), then the topic, the cluster.
sec_cleanup() {
  ((SEC_CREATED)) || return 0
  SEC_CREATED=0
  kn delete pods -l app.kubernetes.io/name=sec-client --wait=false --ignore-not-found >/dev/null 2>&1
  kn delete kafkausers alice mallory bob --wait=true --timeout=60s --ignore-not-found >/dev/null 2>&1
  local u
  for u in alice mallory bob; do
    kn patch kafkauser "$u" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
  kn delete kafkatopic "$SEC_TOPIC" --wait=true --timeout=60s --ignore-not-found >/dev/null 2>&1
  kn patch kafkatopic "$SEC_TOPIC" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  kn delete kafkacluster "$SEC_CLUSTER" --wait=true --timeout=90s --ignore-not-found >/dev/null 2>&1
}

sec_setup() {
  local out
  SEC_CREATED=1
  out="$(kn apply -f - 2>&1 <<EOF
apiVersion: samsa.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: $SEC_CLUSTER
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
    group.initial.rebalance.delay.ms: "0"
  terminationGracePeriodSeconds: 60
  listeners:
    controller: $SEC_CONTROLLER_PORT
    replication: $SEC_REPLICATION_PORT
    kafka:
      - {name: tls, port: $SEC_TLS_PORT, tls: true, authentication: {type: tls}}
      - {name: scram, port: $SEC_SCRAM_PORT, tls: true, authentication: {type: scram-sha-512}}
  authorization:
    type: simple
    allowEveryoneIfNoAclFound: false
---
apiVersion: samsa.dev/v1alpha1
kind: KafkaTopic
metadata:
  name: $SEC_TOPIC
spec:
  clusterRef: {name: $SEC_CLUSTER}
  partitions: 6
  replicationFactor: 3
  config:
    min.insync.replicas: "2"
---
apiVersion: samsa.dev/v1alpha1
kind: KafkaUser
metadata:
  name: alice
spec:
  clusterRef: {name: $SEC_CLUSTER}
  authentication: {type: scram-sha-512}
  authorization:
    acls:
      - resource: {type: topic, name: $SEC_TOPIC}
        operations: [Read, Write, Describe]
      - resource: {type: group, name: secure-, patternType: prefixed}
        operations: [Read, Describe]
---
apiVersion: samsa.dev/v1alpha1
kind: KafkaUser
metadata:
  name: mallory
spec:
  clusterRef: {name: $SEC_CLUSTER}
  authentication: {type: scram-sha-512}
---
apiVersion: samsa.dev/v1alpha1
kind: KafkaUser
metadata:
  name: bob
spec:
  clusterRef: {name: $SEC_CLUSTER}
  authentication: {type: tls}
  authorization:
    acls:
      - resource: {type: topic, name: $SEC_TOPIC}
        operations: [Read, Write, Describe]
      - resource: {type: group, name: bob-, patternType: prefixed}
        operations: [Read]
EOF
)" || { fail "security: kubectl apply KafkaCluster $SEC_CLUSTER, KafkaTopic $SEC_TOPIC, KafkaUsers alice, mallory, bob" "$out"; return 1; }
  local start=$SECONDS
  check "security: KafkaCluster $SEC_CLUSTER (scram SASL_SSL :$SEC_SCRAM_PORT, mTLS :$SEC_TLS_PORT, authorization simple) Ready" \
    kn wait "kafkacluster/$SEC_CLUSTER" --for=condition=Ready --timeout="${WAIT}s" || return 1
  say "security: cluster Ready after $((SECONDS - start))s"
  check "security: certificate Secrets" sec_secrets || return 1
  check "security: KafkaTopic $SEC_TOPIC Ready" kn wait "kafkatopic/$SEC_TOPIC" --for=condition=Ready --timeout=120s || return 1
  check "security: KafkaUsers alice, mallory, bob Ready" kn wait kafkauser/alice kafkauser/mallory kafkauser/bob --for=condition=Ready --timeout=120s || return 1
  check "security: alice's Secret (SCRAM)" sec_user_secret alice password sasl.jaas.config ca.crt bootstrap.servers client.properties librdkafka.properties || return 1
  check "security: mallory's Secret (SCRAM)" sec_user_secret mallory password ca.crt || return 1
  check "security: bob's Secret (TLS)" sec_user_secret bob user.crt user.key ca.crt bootstrap.servers || return 1
}
sec_secrets() {
  local s missing=""
  for s in cluster-ca clients-ca broker-certs operator-cert; do
    kq get secret "$SEC_CLUSTER-$s" -o name >/dev/null 2>&1 || missing+=" $SEC_CLUSTER-$s"
  done
  [[ -z "$missing" ]] || { echo "missing:$missing"; return 1; }
  echo "$SEC_CLUSTER-cluster-ca, -clients-ca, -broker-certs, -operator-cert"
}
# sec_user_secret USER KEY...: the user's Secret has every KEY, not empty.
sec_user_secret() {
  local user="$1" keys missing="" k
  shift
  # shellcheck disable=SC2016 # a Go template
  keys="$(kq get secret "$user" -o go-template='{{range $k, $v := .data}}{{if $v}}{{$k}} {{end}}{{end}}' 2>&1)" || { echo "$keys"; return 1; }
  for k in "$@"; do [[ " $keys " == *" $k "* ]] || missing+=" $k"; done
  [[ -z "$missing" ]] || { echo "Secret $user lacks:$missing (has: $keys)"; return 1; }
  echo "Secret $user: $keys"
}

# sec_env USER: the KCLIENT_* environment of a container connecting as USER (its Secret mounted
# at /secret).
sec_env() {
  if [[ "$1" == bob ]]; then
    cat <<EOF
    env:
    - {name: KCLIENT_SECURITY_PROTOCOL, value: SSL}
    - {name: KCLIENT_TLS_CA, value: /secret/ca.crt}
    - {name: KCLIENT_TLS_CERT, value: /secret/user.crt}
    - {name: KCLIENT_TLS_KEY, value: /secret/user.key}
EOF
  else
    cat <<EOF
    env:
    - {name: KCLIENT_SECURITY_PROTOCOL, value: SASL_SSL}
    - {name: KCLIENT_SASL_MECHANISM, value: SCRAM-SHA-512}
    - {name: KCLIENT_SASL_USERNAME, value: $1}
    - name: KCLIENT_SASL_PASSWORD
      valueFrom: {secretKeyRef: {name: $1, key: password}}
    - {name: KCLIENT_TLS_CA, value: /secret/ca.crt}
EOF
  fi
}

# sec_client_pod USER: a pod sec-USER running `kclient sleep` as USER, for kubectl exec.
sec_client_pod() {
  local out
  out="$(kn apply -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: sec-$1
  labels: {app.kubernetes.io/name: sec-client}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  enableServiceLinks: false
  volumes: [{name: secret, secret: {secretName: $1}}]
  containers:
  - name: kclient
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [sleep]
    volumeMounts: [{name: secret, mountPath: /secret, readOnly: true}]
$(sec_env "$1")
EOF
)" || { echo "$out"; return 1; }
  kn wait "pod/sec-$1" --for=condition=Ready --timeout=120s
}
sec_exec() {
  local user="$1"
  shift
  kq exec "sec-$user" -c kclient -- /kclient "$@"
}

# sec_refused USER WHAT ERROR ARGS...: kclient ARGS as USER fails naming ERROR.
sec_refused() {
  local user="$1" what="$2" want="$3" out rc
  shift 3
  out="$(sec_exec "$user" "$@" 2>&1)"
  rc=$?
  if ((rc == 0)); then
    echo "$user's $what succeeded: $(tail -n 2 <<<"$out")"
    return 1
  fi
  grep -q "$want" <<<"$out" || { echo "exit $rc without $want: $out"; return 1; }
  echo "exit $rc: $(grep -m1 "$want" <<<"$out")"
}

# sec_netpol: the NetworkPolicy's rules for the internal ports.
sec_netpol() {
  local out
  out="$(kq get networkpolicy "$SEC_CLUSTER" -o json 2>&1)" || { echo "$out"; return 1; }
  python3 -c '
import json, sys
np = json.loads(sys.argv[1]); cluster = sys.argv[2]
ctrl, repl, cp = int(sys.argv[3]), int(sys.argv[4]), 9091
spec = np["spec"]
problems = []
sel = spec.get("podSelector", {}).get("matchLabels", {})
if sel.get("samsa.dev/cluster") != cluster:
    problems.append(f"podSelector {sel} does not select the brokers of {cluster}")
if "Ingress" not in spec.get("policyTypes", []):
    problems.append("policyTypes without Ingress")
rules = spec.get("ingress", [])
def rules_for(port):
    return [r for r in rules if any(p.get("port") == port for p in r.get("ports", []))]
for port, what in ((ctrl, "controller"), (repl, "replication")):
    rs = rules_for(port)
    if not rs:
        problems.append(f"no rule for the {what} port {port} (closed)")
    for r in rs:
        peers = r.get("from")
        if not peers:
            problems.append(f"{what} port {port} open to anyone")
            continue
        for p in peers:
            labels = (p.get("podSelector") or {}).get("matchLabels", {})
            if "namespaceSelector" in p or "ipBlock" in p or labels.get("samsa.dev/cluster") != cluster:
                problems.append(f"{what} port {port} open to {p}")
cps = rules_for(cp)
cp_peers = [p for r in cps for p in (r.get("from") or [{"anyone": 1}])]
if not cps or any("anyone" in p or "ipBlock" in p or not (p.get("podSelector") or {}).get("matchLabels") for p in cp_peers):
    problems.append(f"CONTROLPLANE {cp} not restricted to the operator pods: {cp_peers}")
if problems:
    sys.exit("; ".join(problems))
ops = ",".join(f"{k}={v}" for p in cp_peers for k, v in sorted((p.get("podSelector") or {}).get("matchLabels", {}).items()))
print(f"NetworkPolicy {cluster}: ports {ctrl} (controller) and {repl} (replication) only from pods samsa.dev/cluster={cluster}; {cp} only from the operator pods ({ops}); {len(rules)} ingress rules")
' "$out" "$SEC_CLUSTER" "$SEC_CONTROLLER_PORT" "$SEC_REPLICATION_PORT"
}

# sec_load_start: the load pod of the roll test (load, group members, ISR sampler, files), every
# container connecting as alice over SASL_SSL.
sec_load_start() {
  LOAD_POD="roll-load-security"
  local urls="" i groups=""
  for i in 0 1 2; do urls+="${urls:+,}http://$CLUSTER-$i.$CLUSTER-headless.$NS.svc:9404/metrics"; done
  local mounts="    volumeMounts: [{name: work, mountPath: /work}, {name: secret, mountPath: /secret, readOnly: true}]"
  for ((i = 0; i < MEMBERS; i++)); do
    groups+="
  - name: group-$i
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [group, -b, $BOOTSTRAP, -t, $TOPIC, -g, $GROUP, -out, /work/group-$i, -stop-file, /work/stop-group, -pause-file, /work/pause-commits]
$mounts
$(sec_env alice)"
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
  volumes: [{name: work, emptyDir: {}}, {name: secret, secret: {secretName: alice}}]
  containers:
  - name: files
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [sleep]
$mounts
$(sec_env alice)
  - name: load
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [load, -b, $BOOTSTRAP, -t, $TOPIC, -rate, "$RATE", -size, "$SIZE", -acks, /work/acks, -stop-file, /work/stop-load]
$mounts
$(sec_env alice)
  - name: isr
    image: $CLIENT_IMAGE
    imagePullPolicy: $PULL
    args: [isr, -b, $BOOTSTRAP, -t, $TOPIC, -metrics, "$urls", -min-isr, "2", -interval, 250ms, -out, /work/isr, -stop-file, /work/stop-isr]
$mounts
$(sec_env alice)$groups
EOF
)" || { fail "security: load pod $LOAD_POD" "$out"; return 1; }
  check "security: load pod $LOAD_POD Ready (alice over SASL_SSL: producer at $RATE records/s of $SIZE B, $MEMBERS group members, ISR sampler)" \
    kn wait "pod/$LOAD_POD" --for=condition=Ready --timeout=120s || return 1
  eventually 60 "security: alice's idempotent producer acknowledges" load_acked_over 0 || { sec_load_diag; return 1; }
  local m
  for ((m = 0; m < MEMBERS; m++)); do
    eventually 90 "security: alice's group member $m caught up" member_caught_up "$m" || { sec_load_diag; return 1; }
  done
  local a
  a="$(load_acked)"
  eventually $((SETTLE * 3 + 30)) "security: $SETTLE s of load before the renewal" load_acked_over $((a + RATE * SETTLE)) || return 1
  # shellcheck disable=SC2034 # the roll test's global
  LOAD_START="$(now)"
}
sec_load_diag() {
  local c
  for c in load group-0 isr; do
    echo "--- $LOAD_POD $c"
    kq logs "$LOAD_POD" -c "$c" --tail=8 2>&1
  done
}

# sec_template_hash: the tls-hash annotation of the StatefulSet's pod template.
sec_template_hash() { kq get statefulset "$SEC_CLUSTER" -o jsonpath="{.spec.template.metadata.annotations.${SEC_TLS_HASH//./\\.}}"; }
# sec_cert_digests: "pod:sha256 ..." of each broker certificate in the broker-certs Secret.
sec_cert_digests() {
  kq get secret "$SEC_CLUSTER-broker-certs" -o json | python3 -c '
import base64, hashlib, json, sys
d = json.load(sys.stdin)["data"]
print(" ".join(f"{k[:-4]}:{hashlib.sha256(base64.b64decode(v)).hexdigest()[:12]}" for k, v in sorted(d.items()) if k.endswith(".crt") and k != "ca.crt"))'
}
sec_generation() { kq get secret "$SEC_CLUSTER-broker-certs" -o jsonpath="{.metadata.annotations.${SEC_GENERATION//./\\.}}"; }
# sec_all_renewed BEFORE: every broker certificate differs from BEFORE's, the same pods.
sec_all_renewed() {
  local after p same=""
  after="$(sec_cert_digests)"
  [[ "$(tr ' ' '\n' <<<"$after" | cut -d: -f1 | sort)" == "$(tr ' ' '\n' <<<"$1" | cut -d: -f1 | sort)" ]] ||
    { echo "pods differ: before $1, now $after"; return 1; }
  for p in $after; do [[ " $1 " == *" $p "* ]] && same+=" ${p%%:*}"; done
  [[ -z "$same" ]] || { echo "not re-issued yet:$same"; return 1; }
  echo "every broker certificate re-issued: $1 -> $after"
}
sec_renew_event() {
  local ev
  ev="$(kq get events --field-selector "involvedObject.kind=KafkaCluster,involvedObject.name=$SEC_CLUSTER,reason=CertificatesRenewed" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>&1)"
  grep -q "$SEC_RENEW_ANNOTATION" <<<"$ev" || { echo "no CertificatesRenewed event naming $SEC_RENEW_ANNOTATION: $ev"; return 1; }
  grep -m1 "$SEC_RENEW_ANNOTATION" <<<"$ev"
}

scenario_security() {
  local name=security out
  say "=== scenario security: a secured cluster ($SEC_CLUSTER), KafkaUsers, ACLs, the NetworkPolicy, a forced certificate renewal under load"
  SCEN_DIR="$TMP/$name"
  mkdir -p "$SCEN_DIR"
  sec_enter
  if ! sec_setup; then
    sec_leave
    sec_cleanup
    return 1
  fi
  check "security: the NetworkPolicy restricts the internal ports (the object; e2e/cluster enforces no NetworkPolicy)" sec_netpol

  # --- the authorizer
  if check "security: client pods as mallory and bob Ready" sec_two_pods; then
    check "security: mallory's produce refused with TOPIC_AUTHORIZATION_FAILED" \
      sec_refused mallory produce TOPIC_AUTHORIZATION_FAILED produce -b "$BOOTSTRAP" -t "$TOPIC" -n 1 -prefix mallory -timeout 30s
    check "security: mallory's consume refused with TOPIC_AUTHORIZATION_FAILED" \
      sec_refused mallory consume TOPIC_AUTHORIZATION_FAILED consume -b "$BOOTSTRAP" -t "$TOPIC" -n 1 -timeout 30s
    local bob_boot="$SEC_CLUSTER-bootstrap.$NS.svc:$SEC_TLS_PORT" token="bob-$STAMP"
    check "security: bob produces over mutual TLS (user.crt from the clients CA)" \
      sec_exec bob produce -b "$bob_boot" -t "$TOPIC" -n 20 -prefix "$token" -timeout 60s
    check "security: bob reads his records back over mutual TLS" sec_bob_reads "$bob_boot" "$token"
  fi
  kn delete pods -l app.kubernetes.io/name=sec-client --wait=false >/dev/null 2>&1

  # --- the forced renewal under alice's load
  if [[ "$(update_strategy)" != OnDelete ]]; then
    fail "security: the operator rolls the brokers itself (StatefulSet updateStrategy OnDelete)" "updateStrategy '$(update_strategy)'"
  else
    local image hash0 certs0 gen0 hash1 gen1
    image="$(kq get statefulset "$SEC_CLUSTER" -o jsonpath='{.spec.template.spec.containers[0].image}')"
    hash0="$(sec_template_hash)"
    certs0="$(sec_cert_digests)"
    gen0="$(sec_generation)"
    [[ -n "$hash0" ]] || fail "security: the pod template carries $SEC_TLS_HASH"
    pod_watch_start "$SCEN_DIR/pods"
    if sec_load_start; then
      trigger "{\"metadata\":{\"annotations\":{\"$SEC_RENEW_ANNOTATION\":\"e2e-$STAMP\"}}}"
      eventually 60 "security: $SEC_RENEW_ANNOTATION re-issued every broker certificate" sec_all_renewed "$certs0"
      wait_roll "$image" "$REV0" operator
      record_roll "$name"
      hash1="$(sec_template_hash)"
      gen1="$(sec_generation)"
      if [[ -n "$hash1" && "$hash1" != "$hash0" ]]; then
        pass "security: the pod template's $SEC_TLS_HASH changed: $hash0 -> $hash1"
      else
        fail "security: the pod template's $SEC_TLS_HASH changed" "before '$hash0', after '$hash1'"
      fi
      if [[ -n "$gen1" && "$gen1" == "$((${gen0:-0} + 1))" ]]; then
        pass "security: $SEC_GENERATION bumped once: ${gen0:-0} -> $gen1"
      else
        fail "security: $SEC_GENERATION bumped once" "before '${gen0:-}', after '$gen1'"
      fi
      check "security: event CertificatesRenewed names the annotation" sec_renew_event
      check "security: every broker pod replaced" all_restarted
      check "security: every broker restarted exactly once (pod watch)" sec_restarted_once
      operator_status_checks "$name"
      load_stop "$name" operator
    fi
  fi
  stop_watch
  kn delete pod roll-load-security --wait=false --ignore-not-found >/dev/null 2>&1
  LOAD_POD=
  sec_leave
  # Deleted here so that later scenarios have the machine to themselves.
  local start=$SECONDS
  sec_cleanup
  if kq get kafkacluster "$SEC_CLUSTER" -o name >/dev/null 2>&1 || [[ -n "$(kq get kafkausers -o name 2>/dev/null)" ]]; then
    fail "security: KafkaUsers and KafkaCluster $SEC_CLUSTER deleted" "$(kq get kafkaclusters,kafkausers 2>&1)"
  else
    pass "security: KafkaUsers, KafkaTopic $SEC_TOPIC and KafkaCluster $SEC_CLUSTER deleted ($((SECONDS - start))s)"
  fi
}
# sec_restarted_once: the pod watch saw each of the three brokers go down exactly once.
sec_restarted_once() {
  local counts
  counts="$(awk -F'|' '{up = ($4 == "True" && $5 == ""); if (!up && !($2 in down)) {down[$2] = 1; n[$2]++} else if (up) delete down[$2]} END {for (p in n) print p, n[p]}' "$SCEN_DIR/pods" | sort)"
  [[ "$(awk '$2 == 1' <<<"$counts" | wc -l)" == 3 ]] || { echo "times down per broker: ${counts:-none}"; return 1; }
  tr '\n' ' ' <<<"$counts"
}
sec_two_pods() {
  local out
  out="$(sec_client_pod mallory 2>&1)" || { echo "sec-mallory: $out"; return 1; }
  out="$(sec_client_pod bob 2>&1)" || { echo "sec-bob: $out"; return 1; }
  echo "sec-mallory (SASL_SSL, SCRAM-SHA-512), sec-bob (SSL, client certificate)"
}
sec_bob_reads() {
  local out n
  out="$(sec_exec bob consume -b "$1" -t "$TOPIC" -n 20 -timeout 60s 2>&1)" || { echo "$out" | tail -n 5; return 1; }
  n="$(grep -c "^$2-" <<<"$out")"
  ((n == 20)) || { echo "read $n of bob's 20 records: $(tail -n 3 <<<"$out")"; return 1; }
  echo "20 records $2-0..19 back"
}
