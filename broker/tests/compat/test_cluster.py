"""Replication on a real three-broker cluster (e2e/local-cluster: three samsa-broker processes,
each also a controller), with confluent-kafka (librdkafka) and kcat as the clients.

- failover: an idempotent acks=all producer runs while the test kill -9s the leader of a
  partition, restarts it, then kill -9s the controller quorum's leader and restarts it; every
  acknowledged record is then read back exactly once, at the offset it was acknowledged at, in
  production order per partition. The produce unavailability window of each failover (kill ->
  first acknowledged record of a partition the killed broker led) is printed.
- ISR shrink and expand: a paused (SIGSTOP) follower leaves the ISR after
  replica.lag.time.max.ms and acks=all still succeeds; a second paused follower makes acks=all
  fail with NOT_ENOUGH_REPLICAS; resumed, both rejoin the ISR.
- divergent tail: records a leader appended but never replicated (acks=1, followers paused) are
  truncated when that broker, killed and replaced, rejoins as a follower.
- kcat produces and consumes through the cluster.

Waits poll conditions with deadlines; nothing depends on a bare sleep."""

import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import REPO, free_port, http_get
from helpers import wait_until

SCRIPT = REPO / "e2e" / "local-cluster"


class Cluster:
    """A cluster run by e2e/local-cluster in its own state dir and port range."""

    def __init__(self, tmp_path, n, extra_args):
        self.n = n
        # Ports base..base+n-1 (Kafka), +10000 (controller), +20000 (replication), +30000
        # (metrics) must be free: pick a base whose Kafka port is free and check the rest.
        for _ in range(50):
            base = free_port()
            if base > 15000:
                continue
            ports = [base + off + i for off in (0, 10000, 20000, 30000) for i in range(n)]
            if all(_bindable(p) for p in ports):
                break
        else:
            raise RuntimeError("no free port range for the cluster")
        self.base = base
        self.env = dict(os.environ)
        self.env.update(
            SAMSA_CLUSTER_DIR=str(tmp_path / "cluster"),
            SAMSA_CLUSTER_BASE_PORT=str(base),
            SAMSA_CLUSTER_ARGS=" ".join(extra_args),
            SAMSA_BROKER_BIN=os.environ.get(
                "SAMSA_BROKER_BIN", str(REPO / "target" / "debug" / "samsa-broker")
            ),
        )
        self.run("up", str(n))

    def run(self, *args, check=True):
        r = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and r.returncode != 0:
            raise AssertionError(
                "local-cluster %s failed (%d):\n%s\n%s" % (args, r.returncode, r.stdout, r.stderr)
            )
        return r.stdout

    @property
    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % (self.base + i) for i in range(self.n))

    def metrics(self, broker):
        status, body = http_get(self.base + 30000 + broker - 1, "/metrics")
        return body if status == 200 else ""

    def gauge(self, broker, name, labels=""):
        m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), self.metrics(broker), re.M)
        return float(m.group(1)) if m else None

    def quorum_leader(self):
        for b in range(1, self.n + 1):
            if self.gauge(b, "samsa_quorum_role") == 2:
                return b
        return None

    def admin(self):
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def partition(self, topic, p, via=None):
        """(leader, replicas, isr) of a partition as the cluster's Metadata says."""
        servers = self.bootstrap if via is None else "127.0.0.1:%d" % (self.base + via - 1)
        md = AdminClient({"bootstrap.servers": servers}).list_topics(topic, timeout=10)
        part = md.topics[topic].partitions[p]
        return part.leader, list(part.replicas), sorted(part.isrs)

    def create_topic(self, name, partitions, rf, configs, assignment=None):
        if assignment:
            t = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment,
                         config=configs)
        else:
            t = NewTopic(name, partitions, rf, config=configs)
        admin = self.admin()
        for _, f in admin.create_topics([t], operation_timeout=30).items():
            f.result(timeout=30)
        wait_until(
            lambda: all(self._has_leader(name, p) for p in range(partitions)),
            30,
            "leaders for every partition of %s" % name,
        )

    def _has_leader(self, topic, p):
        try:
            return self.partition(topic, p)[0] >= 0
        except Exception:
            return False

    def down(self):
        self.run("down", check=False)


def _bindable(port):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture
def cluster_factory(tmp_path):
    made = []

    def make(n=3, extra_args=()):
        c = Cluster(tmp_path, n, list(extra_args))
        made.append(c)
        return c

    yield make
    for c in made:
        c.down()


FAST = [
    "--broker-session-timeout-ms=3000",
    "--broker-heartbeat-interval-ms=500",
    "--replica-lag-time-max-ms=3000",
]


class AckLog:
    """Delivery reports of a producer: every acknowledged (partition, offset, value, time)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []
        self.errors = []
        self.sent_at = {}

    def sent(self, value):
        with self.lock:
            self.sent_at[value] = time.monotonic()

    def __call__(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value(), time.monotonic()))
            else:
                self.errors.append(err)

    def count(self):
        with self.lock:
            return len(self.acked)

    def first_ack_after(self, t, partitions):
        """When the first record sent after `t` to one of `partitions` was acknowledged."""
        with self.lock:
            times = [a[3] for a in self.acked
                     if a[0] in partitions and self.sent_at.get(a[2], 0) > t]
        return min(times) if times else None


def read_all(bootstrap, topic, partitions, expected_total, timeout=60):
    """Every record of the topic from offset 0, by partition: [(offset, value)]."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused-%s" % uuid.uuid4(),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    deadline = time.monotonic() + timeout
    total = 0
    while total < expected_total and time.monotonic() < deadline:
        for m in c.consume(1000, timeout=1.0):
            if m.error():
                continue
            out[m.partition()].append((m.offset(), m.value()))
            total += 1
    c.close()
    return out


def test_failover_keeps_every_acknowledged_record_once(cluster_factory):
    cl = cluster_factory(3, FAST)
    topic, partitions, n = "failover", 3, 30_000
    cl.create_topic(topic, partitions, 3, {"min.insync.replicas": "2"})
    log = AckLog()
    producer = Producer(
        {
            "bootstrap.servers": cl.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 120_000,
            "retry.backoff.ms": 50,
        }
    )
    stop = threading.Event()

    def produce():
        for i in range(n):
            if stop.is_set():
                return
            key = b"k%d" % (i % 64)
            log.sent(b"%08d" % i)
            while True:
                try:
                    producer.produce(topic, key=key, value=b"%08d" % i, on_delivery=log)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if i % 100 == 99:
                time.sleep(0.05)  # ~2000 records/s: the run spans the failovers

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    windows = []
    try:
        wait_until(lambda: log.count() >= 3000, 60, "the first 3000 acknowledgements")
        # 1. The leader of partition 0.
        leader, _, _ = cl.partition(topic, 0)
        led = [p for p in range(partitions) if cl.partition(topic, p)[0] == leader]
        killed_at = time.monotonic()
        cl.run("kill", str(leader))
        wait_until(lambda: log.first_ack_after(killed_at, led) is not None, 60,
                   "an acknowledgement after the partition leader was killed")
        windows.append(("partition leader %d" % leader, log.first_ack_after(killed_at, led) - killed_at))
        cl.run("start", str(leader))
        wait_until(lambda: all(len(cl.partition(topic, p)[2]) == 3 for p in range(partitions)),
                   60, "the ISR whole again after the restart")
        # 2. The controller quorum's leader.
        wait_until(lambda: cl.quorum_leader() is not None, 30, "a quorum leader")
        ctrl = cl.quorum_leader()
        led = [p for p in range(partitions) if cl.partition(topic, p)[0] == ctrl]
        killed_at = time.monotonic()
        cl.run("kill", str(ctrl))
        wait_until(lambda: log.first_ack_after(killed_at, led or list(range(partitions))) is not None,
                   60, "an acknowledgement after the quorum leader was killed")
        windows.append(("quorum leader %d" % ctrl,
                        log.first_ack_after(killed_at, led or list(range(partitions))) - killed_at))
        cl.run("start", str(ctrl))
        t.join(timeout=120)
        assert not t.is_alive(), "the producer did not finish"
        assert producer.flush(60) == 0, "records still unacknowledged"
    finally:
        stop.set()
    for what, w in windows:
        print("produce unavailability after killing the %s: %.2f s" % (what, w))
    assert not log.errors, log.errors[:5]
    acked = log.acked
    assert len(acked) == n
    consumed = read_all(cl.bootstrap, topic, partitions, n)
    total = sum(len(v) for v in consumed.values())
    assert total == n, "consumed %d records, %d were acknowledged" % (total, n)
    at = {(p, o): v for p, o, v, _ in acked}
    for p, recs in consumed.items():
        offsets = [o for o, _ in recs]
        assert offsets == sorted(set(offsets)), "partition %d: offsets repeat or go back" % p
        for o, v in recs:
            assert at.get((p, o)) == v, "partition %d offset %d: not what was acknowledged" % (p, o)
    values = sorted(int(v) for recs in consumed.values() for _, v in recs)
    assert values == list(range(n)), "every record exactly once"
    # Per partition, records of one key come in production order.
    for p, recs in consumed.items():
        by_key = {}
        for _, v in recs:
            i = int(v)
            last = by_key.get(i % 64, -1)
            assert i > last, "partition %d: record %d after %d" % (p, i, last)
            by_key[i % 64] = i


def produce_one(bootstrap, topic, value, acks="all", timeout_ms=8000):
    """(error code or None, offset) of one record."""
    result = {}

    def done(err, msg):
        result["err"] = err
        result["offset"] = None if err else msg.offset()

    p = Producer({"bootstrap.servers": bootstrap, "acks": acks,
                  "message.timeout.ms": timeout_ms, "retries": 2})
    p.produce(topic, value=value, partition=0, on_delivery=done)
    p.flush(timeout_ms / 1000 + 10)
    err = result.get("err")
    return (err.code() if err else None), result.get("offset")


def test_isr_shrinks_and_expands_with_paused_followers(cluster_factory):
    cl = cluster_factory(3, FAST)
    topic = "isr"
    cl.create_topic(topic, 1, 3, {"min.insync.replicas": "2"})
    leader, replicas, isr = cl.partition(topic, 0)
    assert isr == [1, 2, 3]
    f1, f2 = [b for b in replicas if b != leader]
    assert produce_one(cl.bootstrap, topic, b"before")[0] is None
    cl.run("pause", str(f1))
    try:
        wait_until(lambda: cl.partition(topic, 0, via=leader)[2] == sorted([leader, f2]), 30,
                   "follower %d out of the ISR" % f1)
        code, offset = produce_one(cl.bootstrap, topic, b"two in sync")
        assert code is None and offset == 1, (code, offset)
        cl.run("pause", str(f2))
        wait_until(lambda: produce_one("127.0.0.1:%d" % (cl.base + leader - 1), topic, b"x",
                                       timeout_ms=3000)[0] == KafkaError.NOT_ENOUGH_REPLICAS,
                   40, "NOT_ENOUGH_REPLICAS with one replica in sync")
    finally:
        cl.run("resume", str(f1), check=False)
        cl.run("resume", str(f2), check=False)
    wait_until(lambda: cl.partition(topic, 0)[2] == [1, 2, 3], 60, "the ISR back to 3")
    # The leader may still hold a removal it proposed before the followers' first fetches.
    wait_until(lambda: produce_one(cl.bootstrap, topic, b"after", timeout_ms=3000)[0] is None,
               30, "acks=all accepted again")
    assert cl.partition(topic, 0)[2] == [1, 2, 3]
    print("NOT_ENOUGH_REPLICAS (%d) with one in-sync replica; ISR back to 3 after resume"
          % KafkaError.NOT_ENOUGH_REPLICAS)


def test_a_divergent_tail_is_truncated_on_rejoin(cluster_factory):
    cl = cluster_factory(3, [
        "--broker-session-timeout-ms=4000",
        "--broker-heartbeat-interval-ms=500",
        "--replica-lag-time-max-ms=60000",
        # Followers do not wait at the leader, so a fetch in flight when they are paused
        # cannot come back with records appended after the pause.
        "--replica-fetch-wait-max-ms=0",
    ])
    topic = "div"
    cl.create_topic(topic, 1, 3, {"min.insync.replicas": "1"}, assignment=[[1, 2, 3]])
    leader, _, isr = cl.partition(topic, 0)
    assert leader == 1 and isr == [1, 2, 3]
    p = Producer({"bootstrap.servers": cl.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(100):
        p.produce(topic, value=b"c%03d" % i, partition=0)
    assert p.flush(30) == 0
    wait_until(lambda: all(cl.gauge(b, "samsa_log_end_offset", '{partition="0",topic="div"}') == 100
                           for b in (2, 3)), 30, "followers at 100")
    # Followers stall; the leader takes 50 records only it has (acks=1).
    cl.run("pause", "2")
    cl.run("pause", "3")
    tail = Producer({"bootstrap.servers": "127.0.0.1:%d" % cl.base, "acks": 1})
    for i in range(50):
        tail.produce(topic, value=b"tail%02d" % i, partition=0)
    assert tail.flush(30) == 0
    assert cl.gauge(1, "samsa_log_end_offset", '{partition="0",topic="div"}') == 150
    assert cl.gauge(1, "samsa_partition_high_watermark", '{partition="0",topic="div"}') == 100
    cl.run("kill", "1")
    cl.run("resume", "2")
    cl.run("resume", "3")
    wait_until(lambda: cl.partition(topic, 0, via=2)[0] in (2, 3), 60, "a new leader")
    p2 = Producer({"bootstrap.servers": "127.0.0.1:%d,127.0.0.1:%d" % (cl.base + 1, cl.base + 2),
                   "acks": "all"})
    for i in range(20):
        p2.produce(topic, value=b"n%03d" % i, partition=0)
    assert p2.flush(30) == 0
    cl.run("start", "1")
    wait_until(lambda: cl.partition(topic, 0)[2] == [1, 2, 3], 60, "broker 1 back in the ISR")
    wait_until(lambda: cl.gauge(1, "samsa_log_end_offset", '{partition="0",topic="div"}') == 120,
               30, "broker 1 truncated its tail and caught up")
    values = [v for _, v in read_all(cl.bootstrap, topic, 1, 120)[0]]
    assert values == [b"c%03d" % i for i in range(100)] + [b"n%03d" % i for i in range(20)]
    log = Path(cl.run("logs", "1").strip()).read_text()
    assert "truncating" in log
    print("divergent tail of 50 records truncated; broker 1 log end 120, ISR [1, 2, 3]")


def test_kcat_produces_and_consumes_through_the_cluster(cluster_factory):
    cl = cluster_factory(3, FAST)
    cl.create_topic("kc", 3, 3, {"min.insync.replicas": "2"})
    lines = "".join("m%04d\n" % i for i in range(1000))
    subprocess.run(["kcat", "-b", cl.bootstrap, "-P", "-t", "kc", "-X", "acks=all",
                    "-X", "enable.idempotence=true"], input=lines, text=True, check=True,
                   timeout=60)
    # Read through a broker that leads only some partitions: kcat follows the leaders.
    out = subprocess.run(["kcat", "-b", "127.0.0.1:%d" % (cl.base + 2), "-C", "-t", "kc", "-e",
                          "-q", "-f", "%p %o %s\n"], capture_output=True, text=True, check=True,
                         timeout=60).stdout.split("\n")
    got = sorted(line.split()[2] for line in out if line.strip())
    assert got == ["m%04d" % i for i in range(1000)]
    md = subprocess.run(["kcat", "-b", cl.bootstrap, "-L", "-t", "kc"], capture_output=True,
                        text=True, check=True, timeout=30).stdout
    assert md.count("isrs: ") == 3 and " 3 brokers:" in md, md
