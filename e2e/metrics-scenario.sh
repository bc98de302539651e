# Scenario `metrics` of e2e/roll-test.sh (sourced by it): a real Prometheus, built from its Go
# module (e2e/build-binaries.sh prometheus, image samsa.local/e2e/prometheus:1), scraping what
# the ServiceMonitors select and evaluating the chart's PrometheusRule, under the roll test's
# load.
#
# Setup: the ServiceMonitor and PrometheusRule kinds (the e2e stand-in CRDs of
# e2e/prometheus/standin-crds.yaml when the cluster has none), the chart upgraded with
# serviceMonitor.enabled and prometheusRule.enabled (short `for` durations, below), the
# KafkaCluster's spec.metrics.serviceMonitor on; e2e/prometheus/config.py turns those objects
# into prometheus.yml and rules.yml (every target scraped and every rule evaluated every
# $PROM_INTERVAL), and Prometheus runs as a pod with Kubernetes service discovery.
# Checks (PASS/FAIL each):
#   - every target up: the 3 brokers (ServiceMonitor $CLUSTER) and the operator (the chart's);
#   - every query of every panel of the chart's dashboards returns data (printed with its value);
#   - no Samsa alert firing for the cluster under plain load;
#   - one broker (not the quorum leader) frozen (e2e/cluster freeze: a hung process; only on the
#     project's own cluster, else SKIP): SamsaPartitionsUnderReplicated fires for the cluster,
#     then clears once it is thawed and back in every ISR;
#   - the group stops committing: lag in records and in seconds grows, samsa_consumergroup_status
#     goes ERR, SamsaConsumerGroupError and SamsaConsumerLag fire; once it commits
#     again: status OK and both alerts clear;
#   - the lag Prometheus holds for the group equals what the kclient (franz-go) computes from
#     the committed and end offsets, while the commits are paused (within the records one poll
#     interval produces);
#   - the load's checks: nothing acknowledged lost, none twice, no delivery error, ISR >= 2.

PROM_IMAGE="${SAMSA_E2E_PROMETHEUS_IMAGE:-samsa.local/e2e/prometheus:1}"
PROM_INTERVAL=5s
# The alert rules' durations in this test (the chart's defaults are minutes).
PROM_HELM_SET=(
  --set serviceMonitor.enabled=true --set serviceMonitor.interval=5s --set serviceMonitor.scrapeTimeout=5s
  --set prometheusRule.enabled=true
  --set prometheusRule.underReplicatedFor=5s
  --set prometheusRule.consumerGroupErrorFor=5s
  --set prometheusRule.lagFor=5s
  --set prometheusRule.lagSecondsThreshold=20
)
ALERT_UNDER_REPLICATED=SamsaPartitionsUnderReplicated
ALERT_GROUP_ERROR=SamsaConsumerGroupError
ALERT_LAG=SamsaConsumerLag
PROM_CLUSTER_ROLE=
STANDIN_CRDS=0
FROZEN=

# prom_get PATH QUERY: GET PATH of the Prometheus API through the apiserver's service proxy,
# with the URL-encoded query (may be empty).
prom_get() {
  local q
  q="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")"
  k get --raw "/api/v1/namespaces/$NS/services/prometheus:9090/proxy$1${2:+?query=$q}"
}
# prom_query EXPR: one line per series, "labels value".
prom_query() {
  local out
  out="$(prom_get /api/v1/query "$1" 2>&1)" || { echo "query failed: $out" >&2; return 1; }
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
SKIP = {"__name__", "namespace", "cluster", "container", "endpoint", "instance", "job", "service"}
if r.get("status") != "success":
    sys.exit("query error: " + str(r.get("error")))
d = r["data"]
if d["resultType"] == "scalar":
    print("scalar", d["result"][1])
for s in d["result"] if d["resultType"] == "vector" else []:
    # Target labels every series has (and the test knows) are left out of the line.
    labels = ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k not in SKIP)
    print("{" + labels + "}", s["value"][1])
' "$out"
}

prom_setup() {
  local out dir="$SCEN_DIR/prometheus"
  mkdir -p "$dir"
  if ! k get crd servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com >/dev/null 2>&1; then
    out="$(k apply -f "$E2E_DIR/prometheus/standin-crds.yaml" 2>&1)" || { fail "metrics: the stand-in ServiceMonitor and PrometheusRule CRDs" "$out"; return 1; }
    STANDIN_CRDS=1
    check "metrics: the stand-in ServiceMonitor and PrometheusRule CRDs Established" \
      k wait --for=condition=Established crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com --timeout=60s || return 1
  fi
  out="$(timeout 120 "$HELM" upgrade "$RELEASE" "$ROOT/charts/samsa-operator" -n "$OP_NS" --reuse-values "${PROM_HELM_SET[@]}" 2>&1)" ||
    { fail "metrics: helm upgrade $RELEASE with serviceMonitor and prometheusRule on" "$out"; return 1; }
  pass "metrics: helm upgrade $RELEASE: serviceMonitor.enabled, prometheusRule.enabled (alert durations 5s, lag threshold 20 s)"
  patch_kc '{"spec":{"metrics":{"serviceMonitor":true}}}' || return 1
  eventually 60 "metrics: the operator made ServiceMonitor $CLUSTER for the brokers" kn get servicemonitor "$CLUSTER" -o name || return 1
  check "metrics: the chart's ServiceMonitor and PrometheusRule in $OP_NS" ko get "servicemonitor/$FULLNAME" "prometheusrule/$FULLNAME" -o name || return 1
  k get servicemonitors -A -o json >"$dir/monitors.json" && k get prometheusrules -A -o json >"$dir/rules.json" ||
    { fail "metrics: read the ServiceMonitors and PrometheusRules"; return 1; }
  check "metrics: prometheus.yml and rules.yml from them (e2e/prometheus/config.py)" \
    python3 "$E2E_DIR/prometheus/config.py" --monitors "$dir/monitors.json" --rules "$dir/rules.json" --out "$dir" --interval "$PROM_INTERVAL" || return 1
  PROM_CLUSTER_ROLE="samsa-e2e-prometheus-$STAMP"
  out="$(kn create configmap prometheus --from-file="$dir/prometheus.yml" --from-file="$dir/rules.yml" 2>&1)" || { fail "metrics: ConfigMap prometheus" "$out"; return 1; }
  out="$(kn apply -f - 2>&1 <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $PROM_CLUSTER_ROLE}
rules:
  - apiGroups: [""]
    resources: [services, endpoints, pods]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $PROM_CLUSTER_ROLE}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $PROM_CLUSTER_ROLE}
subjects: [{kind: ServiceAccount, name: prometheus, namespace: $NS}]
---
apiVersion: v1
kind: Pod
metadata:
  name: prometheus
  labels: {app.kubernetes.io/name: prometheus}
spec:
  serviceAccountName: prometheus
  terminationGracePeriodSeconds: 5
  containers:
  - name: prometheus
    image: $PROM_IMAGE
    imagePullPolicy: $PULL
    args: [--config.file=/etc/prometheus/prometheus.yml, --storage.tsdb.path=/data,
           --storage.tsdb.retention.time=2h, --web.listen-address=:9090]
    ports: [{name: web, containerPort: 9090}]
    readinessProbe: {httpGet: {path: /-/ready, port: web}, periodSeconds: 2}
    volumeMounts: [{name: config, mountPath: /etc/prometheus}, {name: data, mountPath: /data}]
  volumes: [{name: config, configMap: {name: prometheus}}, {name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: prometheus}
spec:
  selector: {app.kubernetes.io/name: prometheus}
  ports: [{name: web, port: 9090, targetPort: web}]
EOF
)" || { fail "metrics: the Prometheus pod, its Service and its service-discovery RBAC" "$out"; return 1; }
  check "metrics: Prometheus ($PROM_IMAGE) Ready" kn wait pod/prometheus --for=condition=Ready --timeout=120s || return 1
  say "metrics: $(prom_get /api/v1/status/buildinfo "" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print("Prometheus", d["version"], d["goVersion"])' 2>&1)"
}

prom_cleanup() {
  [[ -n "$FROZEN" ]] && "$E2E_DIR/cluster" thaw "$NS" "$FROZEN" "$BROKER_CONTAINER" >/dev/null 2>&1
  FROZEN=
  [[ -n "$PROM_CLUSTER_ROLE" ]] && k delete clusterrole,clusterrolebinding "$PROM_CLUSTER_ROLE" --ignore-not-found >/dev/null 2>&1
  kn delete pod prometheus --wait=false --ignore-not-found >/dev/null 2>&1
  if ((STANDIN_CRDS)); then
    k delete crd servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com --wait=false >/dev/null 2>&1
    STANDIN_CRDS=0
  fi
  return 0
}

# targets_up: every active target up; the brokers' 3 and the operator's at least 1.
targets_up() {
  prom_get /api/v1/targets "" | python3 -c '
import json, sys
ns, cluster, op_ns, op_svc = sys.argv[1:5]
ts = json.load(sys.stdin)["data"]["activeTargets"]
brokers = [t for t in ts if t["labels"].get("namespace") == ns and t["labels"].get("cluster") == cluster]
ops = [t for t in ts if t["labels"].get("service") == op_svc and t["labels"].get("namespace") == op_ns]
down = [t["scrapeUrl"] + ": " + (t.get("lastError") or t["health"]) for t in brokers + ops if t["health"] != "up"]
print("%d broker targets (namespace %s, cluster %s), %d operator target(s); down: %s" % (len(brokers), ns, cluster, len(ops), down or "none"))
for t in brokers + ops:
    print("  ", t["labels"].get("pod"), t["scrapeUrl"], t["health"])
sys.exit(0 if len(brokers) == 3 and len(ops) >= 1 and not down else 1)
' "$NS" "$CLUSTER" "$OP_NS" "$FULLNAME-metrics"
}

# panels_have_data FILE: every dashboard panel query returns at least one series; FILE gets
# "dashboard | panel | series | first value" per query.
panels_have_data() {
  local out="$1" uid title expr res n empty=0 total=0
  : >"$out"
  while IFS=$'\t' read -r uid title expr; do
    total=$((total + 1))
    res="$(prom_query "$expr" 2>&1)" || res=""
    n="$(grep -c . <<<"$res")"
    [[ -n "$res" ]] || n=0
    ((n > 0)) || { empty=$((empty + 1)); echo "NO DATA $uid | $title | $expr"; }
    printf '%s | %s | %s series | %s\n' "$uid" "$title" "$n" "$(head -n 1 <<<"$res")" >>"$out"
  done < <(python3 "$ROOT/charts/samsa-operator/dashboards/queries.py" --namespace "$NS" --cluster "$CLUSTER")
  ((total > 0)) || { echo "no panel queries (charts/samsa-operator/dashboards/queries.py)"; return 1; }
  ((empty == 0)) || return 1
  echo "$total panel queries, each with data"
}

# alert_state NAME: "firing", "pending" or "inactive" for alert NAME of this cluster.
alert_state() {
  prom_get /api/v1/alerts "" | python3 -c '
import json, sys
name, ns, cluster = sys.argv[1:4]
st = "inactive"
for a in json.load(sys.stdin)["data"]["alerts"]:
    l = a["labels"]
    if l.get("alertname") == name and l.get("namespace") == ns and l.get("cluster") == cluster:
        if a["state"] == "firing" or st == "inactive":
            st = a["state"]
        if a["state"] == "firing":
            print("firing:", json.dumps(l, sort_keys=True), "|", a.get("annotations", {}).get("summary", ""))
            sys.exit(0)
print(st)
' "$1" "$NS" "$CLUSTER"
}
alert_firing() {
  local s
  s="$(alert_state "$1")" || { echo "$s"; return 1; }
  [[ "$s" == firing* ]] || { echo "$1: $s"; return 1; }
  echo "$s"
}
alert_inactive() {
  local s
  s="$(alert_state "$1")" || { echo "$s"; return 1; }
  [[ "$s" == inactive ]] || { echo "$1: $s"; return 1; }
  echo "$1 inactive"
}
no_samsa_alert_firing() {
  prom_get /api/v1/alerts "" | python3 -c '
import json, sys
ns, cluster = sys.argv[1:3]
f = [a["labels"]["alertname"] for a in json.load(sys.stdin)["data"]["alerts"]
     if a["state"] == "firing" and a["labels"].get("namespace") == ns and a["labels"].get("cluster") == cluster]
print("firing:", ", ".join(sorted(set(f))) or "none")
sys.exit(1 if f else 0)
' "$NS" "$CLUSTER"
}

sel() { printf 'namespace="%s",cluster="%s"' "$NS" "$CLUSTER"; }
# prom_value EXPR: the value of the first series of EXPR, or nothing.
prom_value() { prom_query "$1" 2>/dev/null | head -n 1 | awk '{print $NF}'; }
prom_over() {
  local v
  v="$(prom_value "$1")"
  [[ -n "$v" ]] && awk -v v="$v" -v t="$2" 'BEGIN {exit !(v + 0 > t + 0)}' || { echo "$1 = ${v:-no data}, waiting for > $2"; return 1; }
  echo "$1 = $v"
}
group_status_is() {
  local v
  v="$(prom_query "samsa_consumergroup_status{$(sel),consumergroup=\"$GROUP\"} == 1")"
  [[ "$v" == *"status=$1"* ]] || { echo "samsa_consumergroup_status for $GROUP: ${v:-no series at 1}"; return 1; }
  echo "$v"
}
# lag_matches: the group's lag in Prometheus against kclient's (committed vs end offsets, read
# now) while the commits are paused: equal within what one poll interval (10 s) plus one scrape
# produce.
lag_matches() {
  local ours theirs tol=$((RATE * 15))
  ours="$(prom_value "sum(kafka_consumergroup_lag{$(sel),consumergroup=\"$GROUP\",topic=\"$TOPIC\"})")"
  theirs="$(files lag -b "$BOOTSTRAP" -t "$TOPIC" -g "$GROUP" 2>&1 | sed -n 's/^lag total //p')"
  [[ -n "$ours" && -n "$theirs" ]] || { echo "Prometheus ${ours:-none}, kclient ${theirs:-none}"; return 1; }
  awk -v a="$ours" -v b="$theirs" -v t="$tol" 'BEGIN {d = b - a; if (d < 0) d = -d; exit !(d <= t)}' ||
    { echo "Prometheus $ours records, kclient $theirs (more than $tol apart)"; return 1; }
  echo "Prometheus $ours records, kclient $theirs (tolerance $tol: one poll interval and a scrape of production)"
}
# quorum_follower: a broker pod of the cluster that does not lead the quorum.
quorum_follower() {
  local leader i
  leader="$(prom_value "samsa_quorum_leader{$(sel)}")"
  for i in 0 1 2; do
    [[ "$i" == "${leader%.*}" ]] || { echo "$CLUSTER-$i"; return 0; }
  done
}

scenario_metrics() {
  local name=metrics v
  say "=== scenario metrics: a real Prometheus scraping the brokers and the operator, the chart's alerts and dashboards"
  SCEN_DIR="$TMP/$name"
  mkdir -p "$SCEN_DIR"
  if [[ -z "$HELM" ]]; then fail "metrics: helm" "no helm (e2e/build-binaries.sh helm)"; return 1; fi
  prom_setup || { prom_cleanup; return 1; }
  pod_watch_start "$SCEN_DIR/pods"
  load_start "$name" || { prom_cleanup; return 1; }
  TRIGGER_AT="$(now)"
  eventually 120 "metrics: every target up: the brokers and the operator" targets_up
  if eventually 150 "metrics: every dashboard panel's query returns data" panels_have_data "$SCEN_DIR/panels"; then
    say "metrics: panel values:"
    sed 's/^/   /' "$SCEN_DIR/panels"
  fi
  eventually 60 "metrics: no Samsa alert firing for $CLUSTER under plain load" no_samsa_alert_firing

  # --- a broker stops answering
  if [[ "$KUBECONFIG" == "$OWN_KUBECONFIG" ]]; then
    FROZEN="$(quorum_follower)"
    if "$E2E_DIR/cluster" freeze "$NS" "$FROZEN" "$BROKER_CONTAINER" >"$SCEN_DIR/freeze.log" 2>&1; then
      say "metrics: froze $FROZEN (broker container, cgroup freezer)"
      # Within the liveness probe's minute: thawed before the kubelet restarts it.
      eventually 55 "metrics: $ALERT_UNDER_REPLICATED fires with $FROZEN frozen" alert_firing "$ALERT_UNDER_REPLICATED"
      v="$(prom_value "samsa_partitions_under_replicated{$(sel)}")"
      say "metrics: samsa_partitions_under_replicated ${v:-?} with $FROZEN frozen"
      "$E2E_DIR/cluster" thaw "$NS" "$FROZEN" "$BROKER_CONTAINER" >>"$SCEN_DIR/freeze.log" 2>&1 || fail "metrics: thaw $FROZEN" "$(cat "$SCEN_DIR/freeze.log")"
      FROZEN=
      eventually 150 "metrics: $ALERT_UNDER_REPLICATED clears once the broker is back" alert_inactive "$ALERT_UNDER_REPLICATED"
      eventually 60 "metrics: samsa_partitions_under_replicated back to 0" prom_zero "samsa_partitions_under_replicated{$(sel)}"
    else
      fail "metrics: freeze a broker (e2e/cluster freeze)" "$(cat "$SCEN_DIR/freeze.log")"
    fi
  else
    skip "metrics: a frozen broker (e2e/cluster freeze needs the project's own cluster)"
  fi

  # --- the group stops committing
  files touch /work/pause-commits >/dev/null || fail "metrics: pause the group's commits"
  say "metrics: the group $GROUP stopped committing"
  eventually 90 "metrics: the group's lag in seconds passes 20 s" prom_over "max(kafka_consumergroup_group_lag_seconds{$(sel),group=\"$GROUP\"})" 20
  eventually 30 "metrics: the group's lag in records equals kclient's (committed vs end offsets)" lag_matches
  eventually 90 "metrics: samsa_consumergroup_status of $GROUP ERR" group_status_is ERR
  eventually 60 "metrics: $ALERT_GROUP_ERROR fires" alert_firing "$ALERT_GROUP_ERROR"
  eventually 60 "metrics: $ALERT_LAG fires" alert_firing "$ALERT_LAG"
  files rm /work/pause-commits >/dev/null || fail "metrics: resume the group's commits"
  say "metrics: the group commits again"
  eventually 120 "metrics: samsa_consumergroup_status of $GROUP OK" group_status_is OK
  eventually 60 "metrics: $ALERT_GROUP_ERROR clears" alert_inactive "$ALERT_GROUP_ERROR"
  eventually 60 "metrics: $ALERT_LAG clears" alert_inactive "$ALERT_LAG"
  load_stop "$name" metrics
  prom_cleanup
}
prom_zero() {
  local v
  v="$(prom_value "$1")"
  [[ "$v" == 0 ]] || { echo "$1 = ${v:-no data}"; return 1; }
  echo "$1 = 0"
}
