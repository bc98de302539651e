#!/usr/bin/env python3
"""Writes the chart's Grafana dashboards (samsa-*.json, next to this file) with the Grafana
Foundation SDK, the version pinned in requirements.txt (scripts/test-deps.sh installs it in a
cached venv: `scripts/test-deps.sh dashboards` prints its python).

    generate.py [--out DIR]

The output is deterministic: stable uids, panel ids in order, sorted keys, no timestamps; so
charts/check.sh can regenerate into a temporary directory and compare with the checked-in files.

Where the metrics come from:
  - the operator's cluster exporter (operator/src/exporter): kafka_* and samsa_partitions_*,
    samsa_quorum_leader, samsa_quorum_voter_lag, samsa_consumergroup_status; every series has
    `namespace` and `cluster` labels of its own (the KafkaCluster);
  - the operator's own metrics (operator/src/metrics.rs): samsa_operator_*; the reconcile
    counters and the leader gauge have no cluster labels (cluster-independent panels, said so in
    their description); the rollout ones carry `namespace` and `cluster`;
  - every broker's /metrics (broker/src/metrics): samsa_requests_total, ...; scraped with the
    target labels `namespace` (the pod's), `cluster` (the pod label app.kubernetes.io/instance,
    the KafkaCluster's name) and `pod`.

Every query filters on namespace="$namespace", cluster="$cluster" unless its panel description
says "Cluster-independent" (charts/check.sh checks that). A query whose metric has series only
after some event (a roll, a blocked roll, throttled replication) ends in `or on() vector(0)`, and
a comment here says so; nothing else does, so a misspelt metric shows as "No data".
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def pinned_version():
    with open(os.path.join(HERE, "requirements.txt"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^grafana-foundation-sdk==(\S+)\s*$", line)
            if m:
                return m.group(1)
    sys.exit("generate.py: no grafana-foundation-sdk pin in requirements.txt")


def check_sdk():
    from importlib import metadata

    want = pinned_version()
    try:
        have = metadata.version("grafana-foundation-sdk")
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        sys.exit(
            "generate.py: needs grafana-foundation-sdk==%s (found: %s) in %s;\n"
            "  run it with the venv of `scripts/test-deps.sh dashboards`, e.g.\n"
            "  \"$(scripts/test-deps.sh dashboards | sed -n 's/^SAMSA_DASHBOARD_PYTHON=//p')\" %s"
            % (want, have or "not installed", sys.executable, os.path.relpath(__file__))
        )


check_sdk()

# pylint: disable=wrong-import-position
from grafana_foundation_sdk.builders import bargauge as bg_builder  # noqa: E402
from grafana_foundation_sdk.builders import common as common_builder  # noqa: E402
from grafana_foundation_sdk.builders import dashboard as dash  # noqa: E402
from grafana_foundation_sdk.builders import prometheus as prom  # noqa: E402
from grafana_foundation_sdk.builders import stat as stat_builder  # noqa: E402
from grafana_foundation_sdk.builders import table as table_builder  # noqa: E402
from grafana_foundation_sdk.builders import timeseries as ts_builder  # noqa: E402
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402
from grafana_foundation_sdk.models import common  # noqa: E402
from grafana_foundation_sdk.models import dashboard as model  # noqa: E402
from grafana_foundation_sdk.models import prometheus as prom_model  # noqa: E402

DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace="$namespace", cluster="$cluster"'
TAGS = ["samsa", "kafka"]
CLUSTER_INDEPENDENT = (
    " Cluster-independent: the operator's own metric, without namespace and cluster labels."
)


def sel(metric, extra=""):
    """`metric{namespace="$namespace", cluster="$cluster"[, extra]}`."""
    return "%s{%s%s}" % (metric, NS, ", " + extra if extra else "")


def rate(metric, extra=""):
    return "rate(%s[$__rate_interval])" % sel(metric, extra)


# --- panels -----------------------------------------------------------------------------------


def targets(panel, queries, instant=False, table=False):
    """queries: [(expr, legend)]; refIds A, B, ..."""
    for i, (expr, legend) in enumerate(queries):
        q = prom.Dataquery().expr(expr).ref_id(chr(ord("A") + i)).datasource(DS)
        if legend:
            q = q.legend_format(legend)
        if instant:
            q = q.instant()
        if table:
            q = q.format(prom_model.PromQueryFormat.TABLE)
        panel.with_target(q)
    return panel


def thresholds(*steps):
    """steps: (value or None for the base, colour)."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


OK_IF_ZERO = thresholds((None, "green"), (1, "red"))
NEUTRAL = thresholds((None, "blue"))


def stat(title, description, queries, unit="none", th=None, span=4, height=4, mappings=None):
    p = (
        stat_builder.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(span)
        .height(height)
        .thresholds(th or NEUTRAL)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mappings:
        p = p.mappings(mappings)
    return targets(p, queries)


def timeseries(title, description, queries, unit="short", span=12, height=8, stack=False):
    p = (
        ts_builder.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(span)
        .height(height)
        .fill_opacity(10)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stack:
        p = p.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    return targets(p, queries)


def bars(title, description, queries, unit="short", span=12, height=8):
    p = (
        bg_builder.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(span)
        .height(height)
        .thresholds(NEUTRAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return targets(p, queries, instant=True)


# Labels of a scraped series that say nothing in a table.
SCRAPE_LABELS = [
    "Time", "__name__", "namespace", "cluster", "job", "instance", "pod", "service",
    "endpoint", "container", "prometheus", "exported_namespace",
]


def table(title, description, queries, span=24, height=9, merge=False, rename=None, extra=None):
    """An instant table; with `merge`, the queries' values become columns side by side."""
    p = (
        table_builder.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .span(span)
        .height(height)
        .filterable(True)
    )
    targets(p, queries, instant=True, table=True)
    if merge:
        p = p.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
    p = p.with_transformation(
        model.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {k: True for k in SCRAPE_LABELS},
                "renameByName": rename or {},
            },
        )
    )
    for name, props in (extra or {}).items():
        p = p.override_by_name(name, props)
    return p


def row(title):
    return dash.Row(title)


# --- dashboards -------------------------------------------------------------------------------


def variables(d, more=()):
    d.with_variable(
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
    )
    d.with_variable(
        dash.QueryVariable("namespace")
        .label("Namespace")
        .description("Namespace of the KafkaCluster")
        .datasource(DS)
        .query("label_values(kafka_brokers, namespace)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    d.with_variable(
        dash.QueryVariable("cluster")
        .label("Cluster")
        .description("The KafkaCluster")
        .datasource(DS)
        .query('label_values(kafka_brokers{namespace="$namespace"}, cluster)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    for v in more:
        d.with_variable(v)
    return d


def all_variable(name, label, query):
    """A multi-value variable whose "All" is the regex `.*`."""
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def new_dashboard(uid, title, description, more_variables=()):
    d = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            dash.DashboardLink("Samsa")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["samsa"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    return variables(d, more_variables)


def add(d, *items):
    """Adds rows and panels in order, numbering the panels (ids stable across runs)."""
    for item in items:
        if isinstance(item, dash.Row):
            d.with_row(item)
        else:
            d.with_panel(item)
    return d


def cluster_dashboard():
    d = new_dashboard(
        "samsa-cluster",
        "Samsa / Cluster",
        "A KafkaCluster at a glance: brokers, metadata quorum, partition health, traffic, "
        "requests, latency and errors.",
    )
    return add(
        d,
        row("Health"),
        stat(
            "Brokers up",
            "Live brokers in the cluster's metadata (the operator's exporter), brokers "
            "whose /metrics Prometheus scrapes, and spec.brokers.",
            [
                (sel("kafka_brokers"), "registered"),
                (sel("samsa_cluster_brokers_desired"), "desired"),
                ("count(%s)" % sel("samsa_quorum_role"), "scraped"),
            ],
            span=4,
        ),
        stat(
            "Quorum leader",
            "Node id of the metadata quorum's leader, as the operator read it (-1: none).",
            [(sel("samsa_quorum_leader"), "")],
            th=thresholds((None, "red"), (0, "green")),
            span=4,
        ),
        stat(
            "Under-replicated partitions",
            "Partitions with fewer in-sync replicas than replicas.",
            [(sel("samsa_partitions_under_replicated"), "")],
            th=thresholds((None, "green"), (1, "orange")),
            span=4,
        ),
        stat(
            "Under min ISR partitions",
            "Partitions with fewer in-sync replicas than min.insync.replicas: acks=all "
            "produce to them fails.",
            [(sel("samsa_partitions_under_min_isr"), "")],
            th=OK_IF_ZERO,
            span=4,
        ),
        stat(
            "At min ISR partitions",
            "Partitions with exactly min.insync.replicas in-sync replicas: one more loss "
            "stops acks=all produce.",
            [(sel("samsa_partitions_at_min_isr"), "")],
            th=thresholds((None, "green"), (1, "orange")),
            span=4,
        ),
        stat(
            "Offline partitions",
            "Partitions without a leader.",
            [(sel("samsa_partitions_offline"), "")],
            th=OK_IF_ZERO,
            span=4,
        ),
        timeseries(
            "Metadata quorum voter lag",
            "Records of the metadata log each voter lacks behind the leader's high watermark.",
            [(sel("samsa_quorum_voter_lag"), "voter {{voter}}")],
            span=8,
        ),
        timeseries(
            "Fenced brokers",
            "Registered brokers the controller has fenced (the highest any broker reports).",
            [("max(%s)" % sel("samsa_controller_fenced_brokers"), "fenced")],
            span=8,
        ),
        timeseries(
            "Client connections",
            "Open client connections per broker.",
            [("sum by (pod) (%s)" % sel("samsa_connections"), "{{pod}}")],
            span=8,
        ),
        row("Traffic"),
        timeseries(
            "Bytes in",
            "Bytes read from client sockets per broker.",
            [("sum by (pod) (%s)" % rate("samsa_network_received_bytes_total"), "{{pod}}")],
            unit="Bps",
            span=12,
            stack=True,
        ),
        timeseries(
            "Bytes out",
            "Bytes written to client sockets per broker.",
            [("sum by (pod) (%s)" % rate("samsa_network_sent_bytes_total"), "{{pod}}")],
            unit="Bps",
            span=12,
            stack=True,
        ),
        timeseries(
            "Produce and fetch bytes",
            "Record batch bytes appended by Produce and returned by Fetch, whole cluster.",
            [
                ("sum(%s)" % rate("samsa_produce_bytes_total"), "produce"),
                ("sum(%s)" % rate("samsa_fetch_bytes_total"), "fetch"),
            ],
            unit="Bps",
            span=24,
        ),
        row("Requests"),
        timeseries(
            "Request rate by API",
            "Kafka requests handled per second, by API, whole cluster.",
            [("sum by (api) (%s)" % rate("samsa_requests_total"), "{{api}}")],
            unit="reqps",
            span=12,
            stack=True,
        ),
        timeseries(
            "p99 request latency by API",
            "99th percentile of the time from a request's arrival to its response. Fetch "
            "includes its wait for data (fetch.max.wait.ms).",
            [
                (
                    "histogram_quantile(0.99, sum by (api, le) (%s))"
                    % rate("samsa_request_duration_seconds_bucket"),
                    "{{api}}",
                )
            ],
            unit="s",
            span=12,
        ),
        timeseries(
            "Errors by API",
            "Responses with an error code, per second, by API; 0 for the APIs answered "
            "without errors.",
            [
                (
                    # An API that answered no error has no error!="none" series: its 0 comes
                    # from its requests (0 * rate), so the panel has data on a healthy cluster
                    # and still none when samsa_requests_total itself is missing.
                    "sum by (api) (%s) or (0 * sum by (api) (%s))"
                    % (
                        rate("samsa_requests_total", 'error!="none"'),
                        rate("samsa_requests_total"),
                    ),
                    "{{api}}",
                )
            ],
            unit="reqps",
            span=12,
        ),
        table(
            "Responses by API and error code",
            "Responses in the last hour by API and error code (none: no error).",
            [("sum by (api, error) (increase(%s[1h]))" % sel("samsa_requests_total"), "")],
            span=12,
            height=8,
            rename={"Value": "responses (1h)"},
        ),
    )


def topics_dashboard():
    t = 'topic=~"$topic"'
    d = new_dashboard(
        "samsa-topics",
        "Samsa / Topics",
        "Topics and partitions of a KafkaCluster: ISR, leaders, sizes and offsets.",
        [
            all_variable(
                "topic",
                "Topic",
                'label_values(kafka_topic_partitions{namespace="$namespace", '
                'cluster="$cluster"}, topic)',
            )
        ],
    )
    return add(
        d,
        row("Overview"),
        stat("Topics", "Topics selected.", [("count(%s)" % sel("kafka_topic_partitions", t), "")]),
        stat(
            "Partition count",
            "Partitions of the selected topics.",
            [("sum(%s)" % sel("kafka_topic_partitions", t), "")],
        ),
        stat(
            "Under-replicated partitions",
            "Partitions of the selected topics with fewer in-sync replicas than replicas.",
            [("sum(%s)" % sel("kafka_topic_partition_under_replicated_partition", t), "")],
            th=thresholds((None, "green"), (1, "orange")),
        ),
        stat(
            "Partitions without a leader",
            "Partitions of the selected topics whose leader is -1.",
            # `== -1` keeps no series when every partition has a leader: the 0 then comes
            # from the partitions themselves (0 * count), not from a constant.
            [
                (
                    "count(%s == -1) or (0 * count(%s))"
                    % (sel("kafka_topic_partition_leader", t), sel("kafka_topic_partition_leader", t)),
                    "",
                )
            ],
            th=OK_IF_ZERO,
        ),
        stat(
            "Not on preferred leader",
            "Partitions of the selected topics not led by their preferred (first) replica.",
            [("sum(1 - %s)" % sel("kafka_topic_partition_leader_is_preferred", t), "")],
            th=thresholds((None, "green"), (1, "orange")),
        ),
        stat(
            "Log size (all replicas)",
            "Bytes of log segments on the brokers' disks for the selected topics, every "
            "replica counted.",
            [("sum(%s)" % sel("samsa_log_size_bytes", t), "")],
            unit="bytes",
        ),
        row("Replicas and leaders"),
        timeseries(
            "In-sync replicas (lowest partition) by topic",
            "The smallest in-sync replica count among each topic's partitions.",
            [("min by (topic) (%s)" % sel("kafka_topic_partition_in_sync_replica", t), "{{topic}}")],
            span=8,
        ),
        timeseries(
            "Under-replicated partitions by topic",
            "Partitions of each topic with fewer in-sync replicas than replicas.",
            [
                (
                    "sum by (topic) (%s)"
                    % sel("kafka_topic_partition_under_replicated_partition", t),
                    "{{topic}}",
                )
            ],
            span=8,
        ),
        bars(
            "Partition leaders per broker",
            "Partitions of the selected topics each broker leads (by broker id).",
            [
                (
                    'count_values("broker", %s >= 0)' % sel("kafka_topic_partition_leader", t),
                    "broker {{broker}}",
                )
            ],
            span=8,
        ),
        table(
            "Partition details",
            "Every partition: leader, replicas, in-sync replicas, whether the leader is the "
            "preferred one, and its offsets.",
            # Aggregated to drop __name__ and the scrape's labels, so the rows merge.
            [
                ("max by (topic, partition) (%s)" % sel(m, t), "")
                for m in (
                    "kafka_topic_partition_leader",
                    "kafka_topic_partition_replicas",
                    "kafka_topic_partition_in_sync_replica",
                    "kafka_topic_partition_leader_is_preferred",
                    "kafka_topic_partition_oldest_offset",
                    "kafka_topic_partition_current_offset",
                )
            ],
            merge=True,
            rename={
                "Value #A": "leader",
                "Value #B": "replicas",
                "Value #C": "in sync",
                "Value #D": "preferred leader",
                "Value #E": "oldest offset",
                "Value #F": "newest offset",
            },
            height=10,
        ),
        row("Sizes and offsets"),
        timeseries(
            "Log size by topic",
            "Bytes of log segments on disk per topic, every replica counted.",
            [("sum by (topic) (%s)" % sel("samsa_log_size_bytes", t), "{{topic}}")],
            unit="bytes",
            span=12,
        ),
        timeseries(
            "Log size by broker",
            "Bytes of log segments of the selected topics on each broker's disk.",
            [("sum by (pod) (%s)" % sel("samsa_log_size_bytes", t), "{{pod}}")],
            unit="bytes",
            span=12,
        ),
        timeseries(
            "Records in per second by topic",
            "Growth of the topics' log end offsets.",
            [
                (
                    "sum by (topic) (%s)" % rate("kafka_topic_partition_current_offset", t),
                    "{{topic}}",
                )
            ],
            unit="short",
            span=12,
        ),
        timeseries(
            "Records retained by topic",
            "Log end minus log start offset, summed over each topic's partitions.",
            [
                (
                    "sum by (topic) (%s - %s)"
                    % (
                        sel("kafka_topic_partition_current_offset", t),
                        sel("kafka_topic_partition_oldest_offset", t),
                    ),
                    "{{topic}}",
                )
            ],
            span=12,
        ),
    )


STATUS_COLOURS = [
    model.ValueMap(
        options={
            "OK": model.ValueMappingResult(text="OK", color="green", index=0),
            "WARN": model.ValueMappingResult(text="WARN", color="orange", index=1),
            "ERR": model.ValueMappingResult(text="ERR", color="red", index=2),
        }
    )
]


def groups_dashboard():
    g = 'consumergroup=~"$consumergroup"'
    d = new_dashboard(
        "samsa-consumer-groups",
        "Samsa / Consumer groups",
        "Consumer groups of a KafkaCluster: lag in offsets and in seconds, status (OK, WARN, "
        "ERR over a sliding window) and members.",
        [
            all_variable(
                "consumergroup",
                "Consumer group",
                'label_values(kafka_consumergroup_current_offset_sum{namespace="$namespace", '
                'cluster="$cluster"}, consumergroup)',
            )
        ],
    )
    return add(
        d,
        row("Status"),
        stat(
            "Groups by status",
            "Consumer groups per status (OK, WARN, ERR), evaluated by the operator over a "
            "sliding window of lag samples.",
            [("count by (status) (%s)" % sel("samsa_consumergroup_status", g), "{{status}}")],
            span=8,
        ),
        stat(
            "Total lag",
            "Records the selected groups have yet to consume, summed.",
            [("sum(%s)" % sel("kafka_consumergroup_lag_sum", g), "")],
            span=8,
        ),
        stat(
            "Worst lag in seconds",
            "The largest lag in seconds of any partition of the selected groups.",
            [("max(%s)" % sel("kafka_consumergroup_group_lag_seconds", 'group=~"$consumergroup"'), "")],
            unit="s",
            span=8,
        ),
        table(
            "Group status",
            "Each group's status and its reason: the worst partition's (OK, WARN, STOP, "
            "STALL, REWIND).",
            [(sel("samsa_consumergroup_status", g), "")],
            span=12,
            height=8,
            rename={"consumergroup": "group"},
            extra={
                "status": [
                    model.DynamicConfigValue(id_val="mappings", value=STATUS_COLOURS),
                    model.DynamicConfigValue(
                        id_val="custom.cellOptions", value={"type": "color-background"}
                    ),
                ],
                "Value": [model.DynamicConfigValue(id_val="custom.hidden", value=True)],
            },
        ),
        timeseries(
            "Members",
            "Members of each group.",
            [(sel("kafka_consumergroup_members", g), "{{consumergroup}}")],
            span=12,
            height=8,
        ),
        row("Lag"),
        timeseries(
            "Lag by group and topic",
            "Records between the committed offsets and the log end, per group and topic.",
            [(sel("kafka_consumergroup_lag_sum", g), "{{consumergroup}} / {{topic}}")],
            span=12,
        ),
        timeseries(
            "Lag in seconds by group and topic",
            "How long ago the log end was where the group's committed offset is now; the worst "
            "partition of each topic.",
            [
                (
                    "max by (group, topic) (%s)"
                    % sel("kafka_consumergroup_group_lag_seconds", 'group=~"$consumergroup"'),
                    "{{group}} / {{topic}}",
                )
            ],
            unit="s",
            span=12,
        ),
        timeseries(
            "Consumption rate by group and topic",
            "Growth of the committed offsets, records per second.",
            [
                (
                    "sum by (consumergroup, topic) (%s)"
                    % rate("kafka_consumergroup_current_offset_sum", g),
                    "{{consumergroup}} / {{topic}}",
                )
            ],
            span=12,
        ),
        table(
            "Lag by partition",
            "Committed offset, lag in records and lag in seconds of every partition.",
            # Aggregated to drop __name__ and the scrape's labels, so the rows merge.
            [
                ("max by (consumergroup, topic, partition) (%s)" % sel(m, g), "")
                for m in ("kafka_consumergroup_current_offset", "kafka_consumergroup_lag")
            ]
            + [
                (
                    # Its group label is `group`: copied to `consumergroup`, to line up.
                    "max by (consumergroup, topic, partition) (label_replace(%s, "
                    '"consumergroup", "$1", "group", "(.*)"))'
                    % sel("kafka_consumergroup_group_lag_seconds", 'group=~"$consumergroup"'),
                    "",
                )
            ],
            span=12,
            height=8,
            merge=True,
            rename={
                "Value #A": "committed offset",
                "Value #B": "lag",
                "Value #C": "lag seconds",
            },
        ),
    )


def operator_dashboard():
    d = new_dashboard(
        "samsa-operator",
        "Samsa / Operator",
        "The Samsa operator: reconciles, errors and durations; rolls of the selected cluster "
        "(brokers restarting, gates holding the roll, restart times); replica movement.",
    )
    return add(
        d,
        row("Reconciles"),
        stat(
            "Leader replicas",
            "Operator replicas holding the leader lease (1 expected)." + CLUSTER_INDEPENDENT,
            [("sum(samsa_operator_leader)", "")],
            th=thresholds((None, "red"), (1, "green"), (2, "red")),
            span=6,
            height=8,
        ),
        timeseries(
            "Reconciles by kind and result",
            "Reconciles per second." + CLUSTER_INDEPENDENT,
            [
                (
                    "sum by (kind, result) (rate(samsa_operator_reconciles_total[$__rate_interval]))",
                    "{{kind}} {{result}}",
                )
            ],
            unit="ops",
            span=9,
        ),
        timeseries(
            "Reconcile errors by kind",
            "Failed reconciles per second." + CLUSTER_INDEPENDENT,
            [
                (
                    "sum by (kind) (rate(samsa_operator_reconcile_errors_total[$__rate_interval]))",
                    "{{kind}}",
                )
            ],
            unit="ops",
            span=9,
        ),
        timeseries(
            "Reconcile duration by kind",
            "Median and 99th percentile of one reconcile's time." + CLUSTER_INDEPENDENT,
            [
                (
                    "histogram_quantile(0.5, sum by (kind, le) "
                    "(rate(samsa_operator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                    "p50 {{kind}}",
                ),
                (
                    "histogram_quantile(0.99, sum by (kind, le) "
                    "(rate(samsa_operator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                    "p99 {{kind}}",
                ),
            ],
            unit="s",
            span=24,
        ),
        row("Cluster poll"),
        stat(
            "Cluster read by the operator",
            "1 when the operator's last poll read the cluster; 0 when it failed, and the "
            "cluster metrics (lag, ISR, partitions) show the last values read.",
            [(sel("samsa_cluster_poll_success"), "")],
            th=thresholds((None, "red"), (1, "green")),
            span=12,
        ),
        stat(
            "Seconds since the last poll",
            "Seconds since the operator's poll last read the cluster (every "
            "--metrics-interval-seconds, 10 by default).",
            [("time() - max(%s)" % sel("samsa_cluster_poll_timestamp_seconds"), "")],
            unit="s",
            th=thresholds((None, "green"), (60, "orange"), (300, "red")),
            span=12,
        ),
        row("Rolls"),
        stat(
            "Brokers restarting",
            "Brokers of the cluster restarting in a roll now.",
            # Series only once the operator evaluated a roll of this cluster since it started.
            [("sum(%s) or on() vector(0)" % sel("samsa_operator_rollout_in_progress"), "")],
            th=thresholds((None, "green"), (1, "blue")),
            span=6,
        ),
        stat(
            "Roll blocked",
            "1 while a gate holds the cluster's roll (the reason is in the graph below).",
            # Series only while a gate holds the roll.
            [("max(%s) or on() vector(0)" % sel("samsa_operator_rollout_blocked"), "")],
            th=OK_IF_ZERO,
            span=6,
        ),
        stat(
            "Broker restarts in rolls",
            "Broker restarts the operator timed in rolls of this cluster since it started.",
            # Series only after the first restart in a roll.
            [
                (
                    "sum(%s) or on() vector(0)"
                    % sel("samsa_operator_rollout_broker_restart_seconds_count"),
                    "",
                )
            ],
            span=6,
        ),
        stat(
            "Broker restart seconds (p90)",
            "90th percentile of the seconds from a broker pod's deletion in a roll until the "
            "broker is Ready, registered and in every ISR, over the restarts since the "
            "operator started.",
            # Series only after the first restart in a roll.
            [
                (
                    "histogram_quantile(0.9, sum by (le) (%s)) or on() vector(0)"
                    % sel("samsa_operator_rollout_broker_restart_seconds_bucket"),
                    "",
                )
            ],
            unit="s",
            span=6,
        ),
        timeseries(
            "Roll progress",
            "Brokers restarting in a roll, and each gate holding it (ConsumerLagging, "
            "MinInSyncReplicas, RolloutStuck, ...).",
            [
                # Series only once a roll was evaluated / while a gate holds the roll.
                (
                    "sum(%s) or on() vector(0)" % sel("samsa_operator_rollout_in_progress"),
                    "restarting",
                ),
                (
                    "max by (reason) (%s) or on() vector(0)"
                    % sel("samsa_operator_rollout_blocked"),
                    "blocked {{reason}}",
                ),
            ],
            span=12,
        ),
        timeseries(
            "Broker restart seconds",
            "Mean seconds of the broker restarts timed in the last hour.",
            [
                # Series only after the first restart in a roll.
                (
                    "(sum(increase(%s[1h])) / sum(increase(%s[1h]))) or on() vector(0)"
                    % (
                        sel("samsa_operator_rollout_broker_restart_seconds_sum"),
                        sel("samsa_operator_rollout_broker_restart_seconds_count"),
                    ),
                    "mean",
                )
            ],
            unit="s",
            span=12,
        ),
        row("Replica movement and rebalance"),
        stat(
            "Rebalance phase",
            "The phase of the cluster's replica movement (status.rebalance.phase): Idle, "
            "Waiting, Moving, Blocked or Complete.",
            # Every reconcile sets it (status.rebalance is Idle when nothing moves).
            [("max by (phase) (%s)" % sel("samsa_operator_rebalance_phase"), "{{phase}}")],
            span=6,
        ),
        timeseries(
            "Rebalance progress",
            "Partitions and bytes of the current replica movement: done against planned "
            "(status.rebalance).",
            [
                (
                    "max by (state) (%s)" % sel("samsa_operator_rebalance_partitions"),
                    "partitions {{state}}",
                ),
            ],
            span=9,
        ),
        timeseries(
            "Rebalance bytes",
            "Bytes of the current replica movement: moved against planned (status.rebalance).",
            [
                (
                    "max by (state) (%s)" % sel("samsa_operator_rebalance_bytes"),
                    "{{state}}",
                ),
            ],
            unit="bytes",
            span=9,
        ),
        timeseries(
            "Partition replicas per broker",
            "Partition replicas each broker holds: a scale-up fills the new broker, a drain "
            "before a scale-down empties the leaving one.",
            [("count by (pod) (%s)" % sel("samsa_log_size_bytes"), "{{pod}}")],
            span=8,
        ),
        timeseries(
            "Leaders per broker",
            "Partitions each broker leads; preferred-leader elections even them out after a "
            "move.",
            [("sum by (pod) (%s)" % sel("samsa_leader_partitions"), "{{pod}}")],
            span=8,
        ),
        timeseries(
            "Partitions moving or not on preferred leader",
            "Under-replicated partitions (a reassignment's new replicas catching up, or a "
            "broker down) and partitions not led by their preferred replica.",
            [
                (sel("samsa_partitions_under_replicated"), "under-replicated"),
                (
                    "sum(1 - %s)" % sel("kafka_topic_partition_leader_is_preferred"),
                    "not on preferred leader",
                ),
            ],
            span=8,
        ),
        timeseries(
            "Throttled replication",
            "Replication bytes of throttled replicas per second (leader: served, follower: "
            "fetched), while a reassignment runs under a replication throttle.",
            [
                # Series only once a throttled replica moved bytes.
                (
                    "sum by (side) (%s) or on() vector(0)"
                    % rate("samsa_replication_throttled_bytes_total"),
                    "{{side}}",
                )
            ],
            unit="Bps",
            span=24,
        ),
    )


DASHBOARDS = {
    "samsa-cluster.json": cluster_dashboard,
    "samsa-topics.json": topics_dashboard,
    "samsa-consumer-groups.json": groups_dashboard,
    "samsa-operator.json": operator_dashboard,
}


def render(builder):
    d = builder.build()
    # Panel ids in order of appearance, rows included.
    for i, p in enumerate(d.panels or [], start=1):
        p.id_val = i
    text = json.dumps(d, cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False)
    return text + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--out", default=HERE, help="directory to write into (default: %(default)s)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, make in DASHBOARDS.items():
        path = os.path.join(args.out, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(make()))
        print("wrote %s" % path)


if __name__ == "__main__":
    main()
