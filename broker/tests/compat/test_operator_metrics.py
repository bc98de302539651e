"""The operator's consumer-group figures against Apache Kafka's own `kafka-consumer-groups`.

On a three-broker cluster (e2e/local-cluster), a group's coordinator is found (FindCoordinator,
through confluent-kafka's describe_consumer_groups); a three-partition topic is placed, by an
explicit replica assignment, on the brokers that are not the coordinator only; 100 records go to
each partition and the group, without members, commits offset 40 on each. Then
`kafka-consumer-groups --describe` (Kafka 4.1.1's tool) and `samsa-operator metrics` (the
operator's poll code path, run once) must give the same figures per partition:

    CURRENT-OFFSET == kafka_consumergroup_current_offset   (40)
    LOG-END-OFFSET == kafka_topic_partition_current_offset (100)
    LAG            == kafka_consumergroup_lag              (60)

and the lag summed over the topic, 180, is kafka_consumergroup_lag_sum. Committed offsets come
from the coordinator and log end offsets from the leaders, which here are other brokers: a tool
that read both from one broker would get the log end wrong. `kafka-consumer-groups --describe
--state` confirms the coordinator, which must host none of the partitions.

A second case: `samsa-operator metrics` against a port nobody listens on exits 1, naming the
bootstrap, with nothing on stdout."""

import re
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from conftest import free_port
from helpers import wait_until
from kafka_tools import missing, run_tool
from test_cluster import FAST, cluster_factory  # noqa: F401 (the fixture)

GROUP = "lag-compare"
TOPIC = "lag-compare"
PARTITIONS = 3
RECORDS = 100
COMMITTED = 40


def find_coordinator(cluster, group):
    """The broker id FindCoordinator answers for `group` (retried while the cluster creates
    __consumer_offsets)."""
    admin = cluster.admin()

    def ask():
        try:
            f = admin.describe_consumer_groups([group], request_timeout=10)[group]
            d = f.result(timeout=15)
        except KafkaException as e:
            print("describe_consumer_groups %s: %s" % (group, e))
            return None
        return d.coordinator.id if d.coordinator is not None else None

    return wait_until(ask, 60, "the coordinator of group %s" % group, interval=0.5)


def produce(cluster, topic, per_partition, partitions):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000})
    errors = []

    def report(err, _msg):
        if err is not None:
            errors.append(err)

    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=b"record-%d-%d" % (part, i), partition=part,
                      on_delivery=report)
            p.poll(0)
    assert p.flush(60) == 0, "records still unacknowledged"
    assert not errors, errors[:5]


def commit_without_members(cluster, group, topic, offsets):
    """Commits `offsets` ({partition: offset}) for `group` from a consumer that never joins
    (a simple commit, generation -1), then closes it: the group is left Empty."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())]
        done = c.commit(offsets=tps, asynchronous=False)
        assert all(tp.error is None for tp in done), done
        got = c.committed([TopicPartition(topic, p) for p in offsets], timeout=30)
        assert {tp.partition: tp.offset for tp in got} == offsets, got
    finally:
        c.close()


def describe_table(stdout, first_column):
    """The rows of a kafka-consumer-groups table as dicts by header, from the header line that
    starts with `first_column`; columns are split on whitespace (no value here has any)."""
    lines = [line.split() for line in stdout.splitlines() if line.strip()]
    for i, cols in enumerate(lines):
        if cols and cols[0] == first_column and "CURRENT-OFFSET" in cols:
            header = cols
            return [dict(zip(header, row)) for row in lines[i + 1:] if len(row) == len(header)]
    raise AssertionError("no table with a %s header in:\n%s" % (first_column, stdout))


_SERIES = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\} (\S+)$', re.M)
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_series(text):
    """[(name, {label: value}, float)] of the labelled series in Prometheus text."""
    return [(name, dict(_LABEL.findall(labels)), float(value))
            for name, labels, value in _SERIES.findall(text)]


def one(series, name, **labels):
    found = [v for n, ls, v in series
             if n == name and all(ls.get(k) == str(want) for k, want in labels.items())]
    assert len(found) == 1, "%s%s: %d series, want 1" % (name, labels, len(found))
    return found[0]


@pytest.fixture
def kafka_tools_installed():
    why = missing()
    if why is not None:
        pytest.fail(why, pytrace=False)


def test_lag_matches_kafka_consumer_groups_when_the_coordinator_hosts_no_partition(
        cluster_factory, operator_bin, kafka_tools_installed):
    cluster = cluster_factory(3, FAST)
    coordinator = find_coordinator(cluster, GROUP)
    others = [b for b in range(1, 4) if b != coordinator]
    assert coordinator in (1, 2, 3) and len(others) == 2, coordinator
    assignment = [[others[p % len(others)]] for p in range(PARTITIONS)]
    cluster.create_topic(TOPIC, PARTITIONS, 1, {}, assignment=assignment)
    produce(cluster, TOPIC, RECORDS, PARTITIONS)
    commit_without_members(cluster, GROUP, TOPIC, {p: COMMITTED for p in range(PARTITIONS)})

    # The premise: the coordinator (as Kafka's tool finds it) hosts none of the partitions.
    r = run_tool("kafka-consumer-groups", cluster.bootstrap,
                 ["--describe", "--group", GROUP, "--state"])
    assert r.rc == 0, r
    row = [line for line in r.stdout.splitlines() if line.split()[:1] == [GROUP]]
    assert len(row) == 1, r
    m = re.search(r"\((\d+)\)", row[0])
    assert m and int(m.group(1)) == coordinator, (coordinator, r)
    placement = {p: cluster.partition(TOPIC, p) for p in range(PARTITIONS)}
    for p, (leader, replicas, _isr) in placement.items():
        assert replicas == assignment[p] and leader == assignment[p][0], (p, placement)
        assert coordinator not in replicas, (coordinator, placement)

    # Both tools, one right after the other; nothing moves in between.
    described = run_tool("kafka-consumer-groups", cluster.bootstrap,
                         ["--describe", "--group", GROUP])
    assert described.rc == 0, described
    polled = subprocess.run([str(operator_bin), "metrics", "--bootstrap", cluster.bootstrap],
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert polled.returncode == 0, "samsa-operator metrics exited %d\n%s" % (
        polled.returncode, polled.stderr[-3000:])

    rows = {int(r["PARTITION"]): r
            for r in describe_table(described.stdout, "GROUP") if r["TOPIC"] == TOPIC}
    assert sorted(rows) == list(range(PARTITIONS)), described
    series = parse_series(polled.stdout)
    at = dict(namespace="default", cluster="local", topic=TOPIC)
    print("\npartition | kafka-consumer-groups CURRENT/LOG-END/LAG | samsa-operator "
          "current_offset/topic current_offset/lag | leader (coordinator %d)" % coordinator)
    for p in range(PARTITIONS):
        row = rows[p]
        current = one(series, "kafka_consumergroup_current_offset", consumergroup=GROUP,
                      partition=p, **at)
        end = one(series, "kafka_topic_partition_current_offset", partition=p, **at)
        lag = one(series, "kafka_consumergroup_lag", consumergroup=GROUP, partition=p, **at)
        print("%9d | %s/%s/%s | %d/%d/%d | %d" % (
            p, row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"], current, end, lag,
            placement[p][0]))
        assert int(row["CURRENT-OFFSET"]) == current == COMMITTED, (p, row, current)
        assert int(row["LOG-END-OFFSET"]) == end == RECORDS, (p, row, end)
        assert int(row["LAG"]) == lag == RECORDS - COMMITTED, (p, row, lag)
    lag_sum = one(series, "kafka_consumergroup_lag_sum", consumergroup=GROUP, **at)
    print("lag sum: kafka-consumer-groups %d, kafka_consumergroup_lag_sum %d"
          % (sum(int(rows[p]["LAG"]) for p in range(PARTITIONS)), lag_sum))
    assert sum(int(rows[p]["LAG"]) for p in range(PARTITIONS)) == lag_sum \
        == PARTITIONS * (RECORDS - COMMITTED)


def test_metrics_names_the_bootstrap_it_cannot_poll(operator_bin):
    bootstrap = "127.0.0.1:%d" % free_port()  # nothing listens there
    r = subprocess.run([str(operator_bin), "metrics", "--bootstrap", bootstrap,
                        "--kafka-timeout-ms", "1000"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r
    assert bootstrap in r.stderr, r
    assert r.stdout == "", r
