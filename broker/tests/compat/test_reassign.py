"""Moving replicas with Apache Kafka's own kafka-reassign-partitions (4.1.1 jars) on four local
brokers (e2e/local-cluster), under an idempotent acks=all producer and a committing consumer
group, RF 3, min.insync.replicas 2, 12 partitions plus __consumer_offsets:

1. decommission broker 1: `--generate` a plan without it for both topics, `--execute` it with
   `--throttle`, `--verify` until complete (which also removes the throttles); broker 1 then
   holds no replica and no data, is stopped and unregistered (`kafka-cluster unregister`);
2. a topic's replication factor 2 -> 3 -> 2 through plans of our own;
3. a move cancelled midway (`--cancel`) while its new replica cannot catch up (paused);
4. the controller quorum's leader and a moving partition's leader are killed (-9) during a move,
   which still completes once they are back.

Throughout, a sampler reads every broker's samsa_under_min_isr_partitions every 200 ms: it never
rises above 0. At the end every acknowledged record is read back exactly once at its offset,
keys keep their order, and the group read every record without gaps and lost no acknowledged
commit. The time and bytes of each move are printed."""

import json
import re
import threading
import time

import pytest

from helpers import wait_until
from kafka_tools import missing, run_tool
from test_cluster import (  # noqa: F401  (cluster_factory is a fixture)
    AckLog, GroupReader, cluster_factory, idempotent_producer, produce_loop, read_all)

TOPIC, PARTITIONS = "moves", 12
ARGS = ["--offsets-topic-num-partitions=6", "--group-initial-rebalance-delay-ms=0",
        "--controlled-shutdown-timeout-ms=15000"]


@pytest.fixture(autouse=True)
def kafka_tools_installed():
    why = missing()
    if why is not None:
        pytest.fail(why, pytrace=False)


class MinIsrSampler(threading.Thread):
    """Polls samsa_under_min_isr_partitions on every running broker every 200 ms."""

    def __init__(self, cl):
        super().__init__(daemon=True)
        self.cl, self.stop, self.worst, self.samples = cl, threading.Event(), 0.0, 0

    def run(self):
        while not self.stop.is_set():
            for b in range(1, self.cl.n + 1):
                v = self.cl.gauge(b, "samsa_under_min_isr_partitions")
                if v is not None:
                    self.worst = max(self.worst, v)
            self.samples += 1
            self.stop.wait(0.2)


def reassign(cl, action, plan=None, *args, timeout=120):
    r = run_tool("kafka-reassign-partitions", cl.bootstrap, [action, *args],
                 json_input=plan, json_flag="--reassignment-json-file" if plan else None,
                 timeout=timeout)
    return r


def replicas_of(cl, topic, partitions, via):
    return {p: cl.partition(topic, p, via=via)[1] for p in range(partitions)}


def log_bytes(cl, broker, topic):
    """Bytes of `topic`'s .log files in a broker's data dir."""
    data = cl.tmp_path / "cluster" / ("broker-%d" % broker) / "data"
    return sum(f.stat().st_size for d in data.glob("%s-*" % topic) for f in d.glob("*.log"))


def verify_until_done(cl, plan, what, timeout=180):
    """--verify until every partition of `plan` is complete; returns the seconds it took."""
    start = time.monotonic()

    def done():
        r = reassign(cl, "--verify", plan)
        return r.rc == 0 and "is still in progress" not in r.stdout and \
            "Reassignment of partition" in r.stdout
    wait_until(done, timeout, what, interval=1.0)
    return time.monotonic() - start


def test_kafka_reassign_partitions_moves_replicas_under_load(cluster_factory):
    cl = cluster_factory(4, ARGS)
    cl.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
    log = AckLog()
    producer = idempotent_producer(cl.bootstrap)
    stop = threading.Event()
    sent = [0]
    payload = b"x" * 2000

    def record(i):
        return {"key": b"k%d" % (i % 64), "value": b"%08d:" % i + payload}

    t = threading.Thread(target=produce_loop(producer, TOPIC, log, stop, sent, record, 20),
                         daemon=True)
    group = "movers"
    reader = GroupReader(cl.bootstrap, TOPIC, group, PARTITIONS)
    sampler = MinIsrSampler(cl)
    figures = []
    try:
        t.start()
        reader.start()
        wait_until(lambda: log.count() >= 2000 and reader.processed_count() >= 500, 90,
                   "the first acknowledgements and the group reading")
        sampler.start()

        # 1. Decommission broker 1.
        gen = run_tool("kafka-reassign-partitions", cl.bootstrap,
                       ["--generate", "--broker-list", "2,3,4"],
                       json_input={"version": 1, "topics": [{"topic": TOPIC},
                                                            {"topic": "__consumer_offsets"}]},
                       json_flag="--topics-to-move-json-file")
        assert gen.rc == 0, gen
        current, proposed = gen.json_lines()[-2:]
        assert all(1 not in p["replicas"] for p in proposed["partitions"]), proposed
        moving_bytes = log_bytes(cl, 1, TOPIC)
        start = time.monotonic()
        r = reassign(cl, "--execute", proposed, "--throttle", "10000000")
        assert r.rc == 0 and "Successfully started" in r.stdout, r
        took = verify_until_done(cl, proposed, "the decommission of broker 1")
        took = time.monotonic() - start
        figures.append(("decommission broker 1 (%d partitions)" % len(proposed["partitions"]),
                        took, moving_bytes))
        for topic, n in ((TOPIC, PARTITIONS), ("__consumer_offsets", 6)):
            for p, reps in replicas_of(cl, topic, n, via=2).items():
                assert 1 not in reps, "%s-%d still on broker 1: %s" % (topic, p, reps)
        wait_until(lambda: log_bytes(cl, 1, TOPIC) == 0, 30, "broker 1 dropping its copies")
        cl.run("stop", "1")
        un = run_tool("kafka-cluster", cl.addr(2), ["--id", "1"], subcommand="unregister")
        assert un.rc == 0, un
        wait_until(lambda: sorted(b.id for b in cl.admin().list_topics(timeout=10)
                                  .brokers.values()) == [2, 3, 4], 30,
                   "broker 1 gone from Metadata")

        # 2. Replication factor 2 -> 3 -> 2 of a topic of its own.
        cl.create_topic("rf", 2, 2, {"min.insync.replicas": "1"},
                        assignment=[[2, 3], [3, 4]])
        up = {"version": 1, "partitions": [
            {"topic": "rf", "partition": 0, "replicas": [2, 3, 4]},
            {"topic": "rf", "partition": 1, "replicas": [3, 4, 2]}]}
        assert reassign(cl, "--execute", up).rc == 0
        verify_until_done(cl, up, "replication factor 3")
        assert replicas_of(cl, "rf", 2, via=3) == {0: [2, 3, 4], 1: [3, 4, 2]}
        down = {"version": 1, "partitions": [
            {"topic": "rf", "partition": 0, "replicas": [2, 3]},
            {"topic": "rf", "partition": 1, "replicas": [3, 4]}]}
        assert reassign(cl, "--execute", down).rc == 0
        verify_until_done(cl, down, "replication factor 2")
        assert replicas_of(cl, "rf", 2, via=3) == {0: [2, 3], 1: [3, 4]}

        # 3. Cancel midway: the new replica (broker 4) is paused, so the move cannot finish.
        before = replicas_of(cl, TOPIC, PARTITIONS, via=2)
        p0 = next(p for p, reps in before.items() if 4 not in reps)
        target = [b for b in before[p0]][:2] + [4]
        move = {"version": 1, "partitions": [{"topic": TOPIC, "partition": p0,
                                              "replicas": target}]}
        cl.run("pause", "4")
        try:
            assert reassign(cl, "--execute", move).rc == 0
            r = reassign(cl, "--verify", move)
            assert "is still in progress" in r.stdout, r
            c = reassign(cl, "--cancel", move)
            assert c.rc == 0 and "Successfully cancelled" in c.stdout, c
        finally:
            cl.run("resume", "4")
        wait_until(lambda: cl.partition(TOPIC, p0, via=2)[1] == before[p0], 30,
                   "the cancelled move back to %s" % before[p0])

        # 4. Kill -9 the quorum leader and a moving partition's leader during a move.
        ctrl = wait_until(cl.quorum_leader, 30, "a quorum leader")
        swap = {2: 4, 3: 2, 4: 3}
        plan = {"version": 1, "partitions": [
            {"topic": TOPIC, "partition": p, "replicas": [swap[b] for b in reps]}
            for p, reps in replicas_of(cl, TOPIC, PARTITIONS, via=2).items()]}
        start = time.monotonic()
        assert reassign(cl, "--execute", plan, "--throttle", "1048576").rc == 0
        cl.run("kill", str(ctrl))
        cl.run("start", str(ctrl))
        leader = cl.partition(TOPIC, 0, via=next(b for b in (2, 3, 4) if b != ctrl))[0]
        cl.run("kill", str(leader))
        cl.run("start", str(leader))
        verify_until_done(cl, plan, "the move across kill -9s", timeout=240)
        figures.append(("swap replicas across kill -9 of brokers %d and %d" % (ctrl, leader),
                        time.monotonic() - start, None))
        for p, reps in replicas_of(cl, TOPIC, PARTITIONS, via=2).items():
            assert reps == plan["partitions"][p]["replicas"], (p, reps)
        before = log.count()
        wait_until(lambda: log.count() >= before + 500, 60, "production going on")
    finally:
        stop.set()
        sampler.stop.set()
        reader.stop.set()
    t.join(timeout=30)
    reader.join(timeout=30)
    assert producer.flush(60) == 0, "records still unacknowledged"
    for what, secs, nbytes in figures:
        print("%s: %.1f s%s" % (what, secs, ", %.1f MiB" % (nbytes / 2**20) if nbytes else ""))
    print("under-min-ISR partitions, worst of %d samples: %d" % (sampler.samples, sampler.worst))
    assert not log.errors, log.errors[:5]
    n = sent[0]
    assert log.count() == n
    consumed = read_all(cl.addr(2), TOPIC, PARTITIONS, n)
    total = sum(len(v) for v in consumed.values())
    assert total == n, "consumed %d records, %d were acknowledged" % (total, n)
    at = {(p, o): v for p, o, v, _ in log.acked}
    for p, recs in consumed.items():
        seqs = {}
        for o, v in recs:
            assert at.get((p, o)) == v, "partition %d offset %d differs" % (p, o)
            key_seq = int(v.split(b":")[0])
            k = key_seq % 64
            assert seqs.get(k, -1) < key_seq, "key k%d out of order in partition %d" % (k, p)
            seqs[k] = key_seq
    assert not reader.gaps, reader.gaps[:5]
    assert not reader.lost_commits, reader.lost_commits[:5]
    assert sampler.samples > 10 and sampler.worst == 0, \
        "a partition fell below min.insync.replicas during a move"
