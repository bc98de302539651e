"""Apache Kafka's own admin tools (4.1.1 jars from Maven Central, run by kafka_tools.py) against
a real cluster (e2e/local-cluster), checked through Metadata and confluent-kafka:

- kafka-leader-election --election-type preferred --all-topic-partitions hands leadership back
  to the preferred replicas after a broker restart (automatic rebalancing off);
  confluent-kafka's AdminClient.describe_cluster (librdkafka builds it from Metadata) lists the
  brokers with their rack and the controller; kafka-cluster cluster-id (the Java admin client's
  DescribeCluster) names the same cluster id.
- kafka-log-dirs --describe: every broker's one log dir lists the partitions it holds, with
  sizes ordered as the data written to them.
- kafka-delete-records moves the low watermark: ListOffsets earliest and a consumer from the
  beginning start there, also after the leader changes (the followers followed it).
- kafka-leader-election --election-type unclean makes a live replica outside the ISR leader
  when the only ISR member is dead; kafka-cluster unregister removes a dead broker.

Waits poll conditions with deadlines; nothing depends on a bare sleep."""

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from helpers import wait_until
from kafka_tools import missing, run_tool
from test_cluster import FAST, cluster_factory  # noqa: F401 (the fixture)

@pytest.fixture(autouse=True)
def kafka_tools_installed():
    """The tools are a test dependency (scripts/test-deps.sh fetches them): missing, the test
    fails rather than skips."""
    why = missing()
    if why is not None:
        pytest.fail(why, pytrace=False)

NO_REBALANCE = FAST + ["--auto-leader-rebalance-enable=false"]


def produce(cluster, topic, counts, size=200):
    """counts[p] records of `size` bytes to partition p, acks=all; waits for every ack."""
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                  "linger.ms": 5, "message.timeout.ms": 60000})
    errors = []

    def report(err, _msg):
        if err is not None:
            errors.append(err)

    for part, n in enumerate(counts):
        for i in range(n):
            p.produce(topic, value=b"%06d" % i + b"x" * size, partition=part, on_delivery=report)
            p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors


def leaders(cluster, topic, n):
    return [cluster.partition(topic, p)[0] for p in range(n)]


def in_isr(cluster, topic, partitions, broker):
    return all(broker in cluster.partition(topic, p)[2] for p in partitions)


def first_offset(cluster, topic):
    """The offset of the first record a new consumer group reads from the beginning."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "g-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0)])
        msg = wait_until(lambda: _ok(c.poll(1.0)), 60, "a record of %s" % topic, interval=0)
        return msg.offset()
    finally:
        c.close()


def _ok(msg):
    return msg if msg is not None and msg.error() is None else None


def watermarks(cluster, topic):
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "w-" + uuid.uuid4().hex})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def test_preferred_election_after_a_restart_and_describe_cluster(cluster_factory):
    cluster = cluster_factory(3, NO_REBALANCE + ["--broker-rack=rack-a"])
    assignment = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    cluster.create_topic("pe", 3, 3, {}, assignment=assignment)
    wait_until(lambda: leaders(cluster, "pe", 3) == [1, 2, 3], 30, "the preferred leaders")
    produce(cluster, "pe", [20, 20, 20])

    cluster.run("stop", "1")
    wait_until(lambda: 1 not in leaders(cluster, "pe", 3), 30, "leadership away from broker 1")
    cluster.run("start", "1")
    wait_until(lambda: in_isr(cluster, "pe", range(3), 1), 60, "broker 1 back in the ISRs")
    assert leaders(cluster, "pe", 3)[0] != 1, "no automatic rebalance here"

    r = run_tool("kafka-leader-election", cluster.bootstrap,
                 ["--election-type", "preferred", "--all-topic-partitions"])
    assert r.rc == 0, r
    assert "Successfully completed leader election (PREFERRED) for partitions" in r.stdout, r
    assert "pe-0" in r.stdout, r
    wait_until(lambda: leaders(cluster, "pe", 3) == [1, 2, 3], 30, "the preferred leaders again")
    # Again: nothing to do, still a success.
    r = run_tool("kafka-leader-election", cluster.bootstrap,
                 ["--election-type", "preferred", "--topic", "pe", "--partition", "0"])
    assert r.rc == 0, r
    assert "Valid replica already elected for partitions pe-0" in r.stdout, r
    r = run_tool("kafka-leader-election", cluster.bootstrap,
                 ["--election-type", "preferred", "--topic", "nope", "--partition", "0"])
    assert r.rc != 0, r
    assert "UnknownTopicOrPartitionException" in r.stdout + r.stderr, r

    admin = cluster.admin()  # kept: a handle that goes away cancels its requests
    desc = admin.describe_cluster(include_authorized_operations=True).result(timeout=30)
    assert sorted(n.id for n in desc.nodes) == [1, 2, 3]
    assert {n.rack for n in desc.nodes} == {"rack-a"}
    assert {n.port for n in desc.nodes} == {cluster.base, cluster.base + 1, cluster.base + 2}
    assert desc.controller is not None and desc.controller.id in (1, 2, 3)
    assert desc.cluster_id
    # librdkafka builds describe_cluster from Metadata; the Java admin client asks
    # DescribeCluster itself (kafka-cluster cluster-id).
    r = run_tool("kafka-cluster", cluster.bootstrap, [], subcommand="cluster-id")
    assert r.rc == 0, r
    assert r.stdout.strip() == "Cluster ID: %s" % desc.cluster_id, r


def test_log_dirs_and_delete_records(cluster_factory):
    cluster = cluster_factory(3, NO_REBALANCE)
    cluster.create_topic("ld", 2, 3, {}, assignment=[[1, 2, 3], [2, 3, 1]])
    produce(cluster, "ld", [300, 30])

    def described():
        r = run_tool("kafka-log-dirs", cluster.bootstrap, ["--describe", "--topic-list", "ld"])
        assert r.rc == 0, r
        docs = r.json_lines()
        assert len(docs) == 1, r
        sizes = {}
        for b in docs[0]["brokers"]:
            assert len(b["logDirs"]) == 1, b
            d = b["logDirs"][0]
            assert d["error"] is None and d["logDir"], d
            for p in d["partitions"]:
                assert p["isFuture"] is False
                sizes[(b["broker"], p["partition"])] = (p["size"], p["offsetLag"])
        return sizes

    def settled():
        sizes = described()
        per_broker = [(sizes.get((b, "ld-0")), sizes.get((b, "ld-1"))) for b in (1, 2, 3)]
        # Followers caught up: every replica of a partition has the same size.
        if any(p0 is None or p1 is None for p0, p1 in per_broker):
            return None
        if len({p0 for p0, _ in per_broker}) != 1 or len({p1 for _, p1 in per_broker}) != 1:
            return None
        return per_broker

    per_broker = wait_until(settled, 90, "every replica of ld described with equal sizes", interval=1)
    for (size0, lag0), (size1, lag1) in per_broker:
        assert size0 > size1 > 0, per_broker
        assert size0 > 300 * 200, "ld-0 holds about 300 records of 200 bytes"
        assert lag0 == 0 and lag1 == 0

    # kafka-delete-records on the leader of ld-0 (broker 1).
    cluster.create_topic("dr", 1, 3, {}, assignment=[[1, 2, 3]])
    produce(cluster, "dr", [100])
    assert watermarks(cluster, "dr") == (0, 100)
    r = run_tool("kafka-delete-records", cluster.bootstrap, [],
                 json_input={"partitions": [{"topic": "dr", "partition": 0, "offset": 40}],
                             "version": 1},
                 json_flag="--offset-json-file")
    assert r.rc == 0, r
    assert "partition: dr-0\tlow_watermark: 40" in r.stdout, r
    assert watermarks(cluster, "dr") == (40, 100)
    assert first_offset(cluster, "dr") == 40
    # Above the high watermark: refused, nothing moves.
    r = run_tool("kafka-delete-records", cluster.bootstrap, [],
                 json_input={"partitions": [{"topic": "dr", "partition": 0, "offset": 500}],
                             "version": 1},
                 json_flag="--offset-json-file")
    assert "OffsetOutOfRangeException" in r.stdout + r.stderr, r
    assert watermarks(cluster, "dr")[0] == 40
    # One more acknowledged record: a fetch round after the delete reached every follower.
    produce(cluster, "dr", [1])

    cluster.run("stop", "1")
    wait_until(lambda: cluster.partition("dr", 0)[0] in (2, 3), 30, "a new leader of dr-0")
    wait_until(lambda: watermarks(cluster, "dr") == (40, 101), 30,
               "the new leader's low watermark at 40")
    assert first_offset(cluster, "dr") == 40
    cluster.run("start", "1")


def test_unclean_election_and_unregister(cluster_factory):
    # Brokers 1-3 are the controller quorum; 3 and 4 hold the topic, so both may die while the
    # quorum stays up.
    cluster = cluster_factory(4, NO_REBALANCE)
    cluster.create_topic("ue", 1, 2, {"min.insync.replicas": "1"}, assignment=[[3, 4]])
    produce(cluster, "ue", [10])
    cluster.run("kill", "4")
    wait_until(lambda: cluster.partition("ue", 0)[2] == [3], 30, "the ISR down to broker 3")
    produce(cluster, "ue", [5])  # only broker 3 has these
    cluster.run("kill", "3")
    wait_until(lambda: cluster.partition("ue", 0)[0] == -1, 30, "ue-0 without a leader")
    cluster.run("start", "4")
    admin = cluster.admin()
    wait_until(lambda: 4 in [n.id for n in admin.describe_cluster().result(10).nodes],
               30, "broker 4 live again")
    # A preferred election cannot help (broker 3 is dead); a clean one is not possible.
    r = run_tool("kafka-leader-election", cluster.bootstrap,
                 ["--election-type", "preferred", "--topic", "ue", "--partition", "0"])
    assert r.rc != 0, r
    assert "PreferredLeaderNotAvailableException" in r.stdout + r.stderr, r
    assert cluster.partition("ue", 0)[0] == -1, "unclean election is off for the topic"

    r = run_tool("kafka-leader-election", cluster.bootstrap,
                 ["--election-type", "unclean", "--topic", "ue", "--partition", "0"])
    assert r.rc == 0, r
    assert "Successfully completed leader election (UNCLEAN) for partitions ue-0" in r.stdout, r
    wait_until(lambda: cluster.partition("ue", 0)[0] == 4, 30, "broker 4 leading ue-0")
    assert cluster.partition("ue", 0)[2] == [4]
    assert watermarks(cluster, "ue")[1] == 10, "the records only broker 3 had are lost"

    # kafka-cluster unregister: broker 3 is dead (and fenced), it leaves the metadata.
    r = run_tool("kafka-cluster", cluster.bootstrap, ["--id", "3"], subcommand="unregister")
    assert r.rc == 0, r
    assert "Broker 3 is no longer registered." in r.stdout, r
    r = run_tool("kafka-cluster", cluster.bootstrap, ["--id", "3"], subcommand="unregister")
    assert r.rc != 0, r
    assert "BrokerIdNotRegisteredException" in r.stdout + r.stderr, r
    # Broker 3 comes back: it registers again and follows broker 4.
    cluster.run("start", "3")
    wait_until(lambda: cluster.partition("ue", 0)[2] == [3, 4], 60, "broker 3 back in the ISR")
