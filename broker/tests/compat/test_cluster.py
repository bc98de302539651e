"""Replication on a real three-broker cluster (e2e/local-cluster: three samsa-broker processes,
each also a controller), with confluent-kafka (librdkafka) and kcat as the clients.

- failover: an idempotent acks=all producer and a consumer group run while the test kill -9s
  the leader of a partition, restarts it, then kill -9s the controller quorum's leader, then the
  group's coordinator, restarting each; every acknowledged record is then read back exactly once,
  at the offset it was acknowledged at, in production order per partition; the group consumed
  every acknowledged record, in order per partition, skipping none, and no acknowledged commit
  was lost across the coordinator moves. The produce unavailability window of each failover
  (kill -> first acknowledged record of a partition the killed broker led) and the group's commit
  gap across the coordinator kill are printed.
- fast failover: with the default 9 s broker session timeout, the leader of partitions (not the
  quorum leader) is kill -9ed under an idempotent acks=all producer; the controller leader fences
  it as soon as its session stream breaks, so the first acknowledgement on a partition it led
  comes within a few seconds (printed; asserted well under the session timeout), and no
  acknowledged record is lost.
- ISR shrink and expand: a paused (SIGSTOP) follower leaves the ISR after
  replica.lag.time.max.ms and acks=all still succeeds; a second paused follower makes acks=all
  fail with NOT_ENOUGH_REPLICAS; resumed, both rejoin the ISR.
- divergent tail: records a leader appended but never replicated (acks=1, followers paused) are
  truncated when that broker, killed and replaced, rejoins as a follower.
- network partition: each broker in a network namespace of its own (local-cluster with
  SAMSA_CLUSTER_NETNS=1), the partition leader cut off from everyone; with unclean election off,
  no record acknowledged to the producer outside is lost and the old leader's unacknowledged tail
  (records a producer on its side sent with acks=all) is truncated when it rejoins.
- kcat produces and consumes through the cluster.

Waits poll conditions with deadlines; nothing depends on a bare sleep."""

import json
import os
import random
import re
import shutil
import sys
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import REPO, _ephemeral_range, free_port, http_get
from helpers import CLIENTS, wait_until

SCRIPT = REPO / "e2e" / "local-cluster"


class Cluster:
    """A cluster run by e2e/local-cluster in its own state dir and port range."""

    def __init__(self, tmp_path, n, extra_args, netns=False):
        self.n = n
        self.netns = netns
        self.tmp_path = tmp_path
        # Ports base..base+n-1 (Kafka), +10000 (controller), +20000 (replication), +30000
        # (metrics) must be free, and should lie below the kernel's ephemeral range: a broker
        # down for a restart must find its ports again, and an outgoing connection may take
        # any free ephemeral port as its local port. With the default range (32768 and up)
        # that means a base in 1100..2700; elsewhere, any base whose ports are free.
        lo, _hi = _ephemeral_range()
        top = lo - 30000 - n
        for _ in range(50):
            base = random.randrange(1100, top) if top > 1200 else free_port()
            if top <= 1200 and base > 15000:
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
            SAMSA_CLUSTER_NETNS="1" if netns else "0",
            SAMSA_BROKER_BIN=os.environ.get(
                "SAMSA_BROKER_BIN", str(REPO / "target" / "debug" / "samsa-broker")
            ),
        )
        self.run("up", str(n))
        self.hosts = {b: self.run("host", str(b)).strip() for b in range(1, n + 1)}

    def run(self, *args, check=True):
        r = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and r.returncode != 0:
            raise AssertionError(
                "local-cluster %s failed (%d):\n%s\n%s" % (args, r.returncode, r.stdout, r.stderr)
            )
        return r.stdout

    def addr(self, broker):
        return "%s:%d" % (self.hosts[broker], self.base + broker - 1)

    @property
    def bootstrap(self):
        return ",".join(self.addr(b) for b in range(1, self.n + 1))

    def metrics(self, broker):
        if not self.netns:
            status, body = http_get(self.base + 30000 + broker - 1, "/metrics")
            return body if status == 200 else ""
        # From inside the broker's namespace, which answers even while it is isolated.
        url = "http://%s:%d/metrics" % (self.hosts[broker], self.base + 30000 + broker - 1)
        r = subprocess.run([str(SCRIPT), "exec", str(broker), "curl", "-s", "--max-time", "2", url],
                           env=self.env, capture_output=True, text=True, timeout=30)
        return r.stdout if r.returncode == 0 else ""

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
        servers = self.bootstrap if via is None else self.addr(via)
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
        # Keep the brokers' logs next to the test's other files (pytest's tmp_path).
        keep = self.tmp_path / "broker-logs"
        keep.mkdir(exist_ok=True)
        for b in range(1, self.n + 1):
            log = self.tmp_path / "cluster" / ("broker-%d" % b) / "broker.log"
            if log.exists():
                shutil.copy(log, keep / ("broker-%d.log" % b))
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

    def make(n=3, extra_args=(), netns=False):
        c = Cluster(tmp_path, n, list(extra_args), netns)
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


def keyed_record(i):
    """Record i of a test load: 64 keys in turn, the value its sequence number."""
    return {"key": b"k%d" % (i % 64), "value": b"%08d" % i}


def idempotent_producer(bootstrap, **extra):
    """An idempotent acks=all confluent-kafka producer that retries for two minutes."""
    config = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 120_000,
        "retry.backoff.ms": 50,
    }
    config.update(extra)
    return Producer(config)


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


def produce_loop(producer, topic, log, stop, sent, record, per_tick):
    """A function producing record(0), record(1), ... (produce() keyword arguments) until `stop`
    is set, per_tick records every 50 ms; sent[0] counts them and `log` sees each send and
    delivery report."""

    def run():
        i = 0
        while not stop.is_set():
            kwargs = record(i)
            log.sent(kwargs["value"])
            while True:
                try:
                    producer.produce(topic, on_delivery=log, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            i += 1
            sent[0] = i
            if i % per_tick == 0:
                time.sleep(0.05)

    return run


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


class GroupReader(threading.Thread):
    """One member of a consumer group reading the topic while brokers fail: it commits what it
    processed after every poll, synchronously, and checks every delivery against what it has
    processed and what the group acknowledged as committed."""

    def __init__(self, bootstrap, topic, group, partitions):
        super().__init__(daemon=True)
        self.topic, self.group, self.partitions = topic, group, partitions
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            }
        )
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.next = {p: 0 for p in range(partitions)}  # next offset to process
        self.committed = {p: 0 for p in range(partitions)}  # acknowledged commits
        self.processed = {p: [] for p in range(partitions)}
        self.redelivered = 0
        self.gaps = []  # (partition, expected offset, delivered offset)
        self.lost_commits = []  # (partition, delivered offset, acknowledged commit)
        self.commit_ok_at = []
        self.commit_errors = 0
        self.assignments = 0

    def _assigned(self, consumer, parts):
        with self.lock:
            self.assignments += 1

    def processed_count(self):
        with self.lock:
            return sum(len(v) for v in self.processed.values())

    def first_commit_after(self, t):
        """When the first commit sent after `t` was acknowledged."""
        with self.lock:
            after = [done for sent, done in self.commit_ok_at if sent > t]
        return min(after) if after else None

    def run(self):
        c = self.consumer
        c.subscribe([self.topic], on_assign=self._assigned)
        while not self.stop.is_set():
            for m in c.consume(500, timeout=0.2):
                if m.error():
                    continue
                p, o = m.partition(), m.offset()
                with self.lock:
                    if o < self.next[p]:
                        self.redelivered += 1
                        if o < self.committed[p]:
                            self.lost_commits.append((p, o, self.committed[p]))
                        continue
                    if o > self.next[p]:
                        self.gaps.append((p, self.next[p], o))
                    self.processed[p].append((o, m.value()))
                    self.next[p] = o + 1
            with self.lock:
                due = [TopicPartition(self.topic, p, self.next[p])
                       for p in range(self.partitions) if self.next[p] > self.committed[p]]
            if not due:
                continue
            sent = time.monotonic()
            try:
                done = c.commit(offsets=due, asynchronous=False)
            except KafkaException:
                with self.lock:
                    self.commit_errors += 1
                continue
            with self.lock:
                now = time.monotonic()
                for tp in done:
                    if tp.error is None:
                        self.committed[tp.partition] = max(self.committed[tp.partition], tp.offset)
                        self.commit_ok_at.append((sent, now))

    def final_commits(self):
        """The group's committed offsets as the (current) coordinator answers them."""
        tps = self.consumer.committed(
            [TopicPartition(self.topic, p) for p in range(self.partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}


def offsets_partition(group, partitions=50):
    """The __consumer_offsets partition of a group: abs(Java's String.hashCode) mod count."""
    units = group.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return abs(h) % partitions


def test_failover_keeps_every_acknowledged_record_once(cluster_factory):
    cl = cluster_factory(3, FAST + ["--group-initial-rebalance-delay-ms=0"])
    topic, partitions = "failover", 3
    cl.create_topic(topic, partitions, 3, {"min.insync.replicas": "2"})
    log = AckLog()
    producer = idempotent_producer(cl.bootstrap)
    stop = threading.Event()
    sent = [0]

    record = keyed_record

    produce = produce_loop(producer, topic, log, stop, sent, record, per_tick=100)

    group = "failover-group"
    reader = GroupReader(cl.bootstrap, topic, group, partitions)
    reader.start()
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    windows = []

    def kill_and_restart(what, broker, led):
        cl.run("kill", str(broker))  # returns once the process is gone
        dead_at = time.monotonic()
        parts = led or list(range(partitions))
        wait_until(lambda: log.first_ack_after(dead_at, parts) is not None, 60,
                   "an acknowledgement after the %s was killed" % what)
        label = "%s %d (leader of partitions %s)" % (what, broker, led) if led else \
            "%s %d (leader of no partition of the topic)" % (what, broker)
        windows.append((label, log.first_ack_after(dead_at, parts) - dead_at))
        cl.run("start", str(broker))
        wait_until(lambda: all(len(cl.partition(topic, p)[2]) == 3 for p in range(partitions)),
                   60, "the ISR whole again after the restart")
        return dead_at

    def leads(broker):
        return [p for p in range(partitions) if cl.partition(topic, p)[0] == broker]

    def coordinator():
        """The leader of the group's __consumer_offsets partition: its coordinator."""
        try:
            return cl.partition("__consumer_offsets", offsets_partition(group))[0]
        except Exception as e:
            print("__consumer_offsets metadata:", repr(e))
            return None

    try:
        wait_until(lambda: log.count() >= 3000 and reader.processed_count() >= 1000, 60,
                   "the first 3000 acknowledgements and the group reading")
        # 1. The leader of partition 0.
        leader = cl.partition(topic, 0)[0]
        kill_and_restart("partition leader", leader, leads(leader))
        # 2. The controller quorum's leader.
        wait_until(lambda: cl.quorum_leader() is not None, 30, "a quorum leader")
        ctrl = cl.quorum_leader()
        kill_and_restart("quorum leader", ctrl, leads(ctrl))
        # 3. The group's coordinator: the leader of its __consumer_offsets partition.
        coord = wait_until(coordinator, 30, "the group's coordinator")
        before = reader.processed_count()
        dead_at = kill_and_restart("group coordinator", coord, leads(coord))
        wait_until(lambda: reader.first_commit_after(dead_at) is not None, 60,
                   "a group commit after the coordinator was killed")
        commit_gap = reader.first_commit_after(dead_at) - dead_at
        new_coord = wait_until(coordinator, 30, "the group's coordinator after the kill")
        wait_until(lambda: log.count() >= sent[0] - 4000 and reader.processed_count() > before + 2000,
                   60, "production and consumption going on after the last restart")
    finally:
        stop.set()
    t.join(timeout=30)
    assert not t.is_alive(), "the producer did not stop"
    assert producer.flush(60) == 0, "records still unacknowledged"
    n = sent[0]
    for what, w in windows:
        print("produce unavailability after killing the %s: %.2f s" % (what, w))
    print("group commits resumed %.2f s after coordinator %d was killed (now %d)"
          % (commit_gap, coord, new_coord))
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
    # The group: it reads to the end, then its commits equal the end offsets.
    ends = {p: len(consumed[p]) for p in range(partitions)}
    wait_until(lambda: reader.processed_count() == n, 90, "the group at the end of the topic")
    wait_until(lambda: reader.committed == ends, 30, "the group's commits at the end offsets")
    reader.stop.set()
    reader.join(timeout=30)
    assert reader.final_commits() == ends
    reader.consumer.close()
    assert not reader.gaps, "the group skipped records: %s" % reader.gaps[:5]
    assert not reader.lost_commits, "acknowledged commits lost: %s" % reader.lost_commits[:5]
    for p in range(partitions):
        assert reader.processed[p] == consumed[p], "partition %d: the group read otherwise" % p
    print("group: %d records processed once each in %d assignments; %d redelivered after "
          "unacknowledged commits; %d commits failed during failovers"
          % (n, reader.assignments, reader.redelivered, reader.commit_errors))


SESSION_TIMEOUT_S = 9.0  # the broker's default --broker-session-timeout-ms
# The fast path must beat the session timeout by a wide margin; the goal is 2 s, the bound
# leaves room for a busy 2-core machine.
FAST_FAILOVER_BOUND_S = 5.0


def test_killed_leader_fails_over_before_the_session_timeout(cluster_factory):
    cl = cluster_factory(3)  # default session timeout and heartbeat interval
    topic, partitions = "fastfail", 3
    cl.create_topic(topic, partitions, 3, {"min.insync.replicas": "2"})
    log = AckLog()
    producer = idempotent_producer(cl.bootstrap)
    stop = threading.Event()
    sent = [0]

    record = keyed_record

    produce = produce_loop(producer, topic, log, stop, sent, record, per_tick=50)
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    try:
        wait_until(lambda: log.count() >= 2000, 60, "the first 2000 acknowledgements")
        ctrl = wait_until(cl.quorum_leader, 30, "a quorum leader")
        # The victim leads partitions and is not the quorum leader (whose death is a controller
        # failover: the new leader waits out the session timeout of brokers it never heard).
        leaders = {p: cl.partition(topic, p)[0] for p in range(partitions)}
        victim = next(b for b in sorted(set(leaders.values())) if b != ctrl)
        led = [p for p, b in leaders.items() if b == victim]
        acked_before = log.count()
        cl.run("kill", str(victim))  # returns once the process is gone
        dead_at = time.monotonic()
        wait_until(lambda: log.first_ack_after(dead_at, led) is not None, 60,
                   "an acknowledgement on partitions %s after broker %d was killed" % (led, victim))
        window = log.first_ack_after(dead_at, led) - dead_at
        wait_until(lambda: log.count() >= acked_before + 2000, 60,
                   "2000 more acknowledgements after the kill")
        # Then the quorum leader itself, once it leads partitions: a controller failover, after
        # which the new leader gives the old leader's broker only a short grace.
        cl.run("start", str(victim))
        wait_until(lambda: all(len(cl.partition(topic, p)[2]) == 3 for p in range(partitions)),
                   60, "the ISR whole again after the restart")
        ctrl_led = [p for p in range(partitions) if cl.partition(topic, p)[0] == ctrl]
        assert ctrl_led, "the quorum leader %d leads no partition of the topic" % ctrl
        acked_before = log.count()
        cl.run("kill", str(ctrl))
        ctrl_dead_at = time.monotonic()
        wait_until(lambda: log.first_ack_after(ctrl_dead_at, ctrl_led) is not None, 60,
                   "an acknowledgement on partitions %s after the quorum leader %d was killed"
                   % (ctrl_led, ctrl))
        ctrl_window = log.first_ack_after(ctrl_dead_at, ctrl_led) - ctrl_dead_at
        new_ctrl = wait_until(cl.quorum_leader, 30, "a new quorum leader")
        wait_until(lambda: log.count() >= acked_before + 2000, 60,
                   "2000 more acknowledgements after the second kill")
    finally:
        stop.set()
    t.join(timeout=30)
    assert not t.is_alive(), "the producer did not stop"
    assert producer.flush(60) == 0, "records still unacknowledged"
    n = sent[0]
    assert not log.errors, log.errors[:5]
    assert log.count() == n
    consumed = read_all(cl.bootstrap, topic, partitions, n)
    total = sum(len(v) for v in consumed.values())
    at = {(p, o): v for p, o, v, _ in log.acked}
    kept = {p: set(recs) for p, recs in consumed.items()}
    lost = [(p, o) for (p, o), v in at.items() if (o, v) not in kept[p]]
    assert not lost, "acknowledged records lost: %s" % lost[:5]
    assert total == n, "consumed %d records, %d were acknowledged" % (total, n)
    values = sorted(int(v) for recs in consumed.values() for _, v in recs)
    assert values == list(range(n)), "every record exactly once"
    ctrl_log = Path(cl.run("logs", str(ctrl)).strip()).read_text()
    fenced = [line for line in ctrl_log.splitlines()
              if "fencing the broker" in line and "broker=%d" % victim in line]
    print("kill -9 of broker %d (leader of partitions %s, quorum leader %d): first "
          "acknowledgement on its partitions after %.2f s (session timeout %.0f s); %d "
          "acknowledged records, 0 lost" % (victim, led, ctrl, window, SESSION_TIMEOUT_S, n))
    print("controller log:", fenced[-1] if fenced else "(no stream fence logged)")
    print("kill -9 of the quorum leader %d (leader of partitions %s): first acknowledgement on "
          "its partitions after %.2f s; broker %d leads the quorum now"
          % (ctrl, ctrl_led, ctrl_window, new_ctrl))
    assert fenced, "the controller leader did not fence broker %d on its session's end" % victim
    assert ctrl_window < FAST_FAILOVER_BOUND_S, (
        "first acknowledgement %.2f s after the quorum leader was killed" % ctrl_window)
    assert window < FAST_FAILOVER_BOUND_S, (
        "first acknowledgement %.2f s after the kill: the session timeout (%.0f s), not the "
        "broken session stream, moved leadership" % (window, SESSION_TIMEOUT_S))


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
        wait_until(lambda: produce_one(cl.addr(leader), topic, b"x",
                                       timeout_ms=3000)[0] == KafkaError.NOT_ENOUGH_REPLICAS,
                   40, "NOT_ENOUGH_REPLICAS with one replica in sync")
    finally:
        cl.run("resume", str(f1), check=False)
        cl.run("resume", str(f2), check=False)
    # Each broker answers Metadata from its own copy of the metadata log, which may trail the
    # controller by a moment: ask every one of them, so a later read cannot go back.
    def isr_everywhere():
        return [cl.partition(topic, 0, via=b)[2] for b in (1, 2, 3)]

    wait_until(lambda: isr_everywhere() == [[1, 2, 3]] * 3, 60, "the ISR back to 3 on every broker")
    # The leader may still hold a removal it proposed before the followers' first fetches.
    wait_until(lambda: produce_one(cl.bootstrap, topic, b"after", timeout_ms=3000)[0] is None,
               30, "acks=all accepted again")
    assert isr_everywhere() == [[1, 2, 3]] * 3
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
    tail = Producer({"bootstrap.servers": cl.addr(1), "acks": 1})
    for i in range(50):
        tail.produce(topic, value=b"tail%02d" % i, partition=0)
    assert tail.flush(30) == 0
    assert cl.gauge(1, "samsa_log_end_offset", '{partition="0",topic="div"}') == 150
    assert cl.gauge(1, "samsa_partition_high_watermark", '{partition="0",topic="div"}') == 100
    cl.run("kill", "1")
    cl.run("resume", "2")
    cl.run("resume", "3")
    wait_until(lambda: cl.partition(topic, 0, via=2)[0] in (2, 3), 60, "a new leader")
    p2 = Producer({"bootstrap.servers": "%s,%s" % (cl.addr(2), cl.addr(3)),
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


def test_network_partition_isolating_the_leader(cluster_factory):
    """Each broker in a network namespace of its own; the partition leader's veth is detached
    from the bridge (e2e/local-cluster isolate). A producer outside keeps producing with
    acks=all; a producer on the leader's side of the partition gets nothing acknowledged; after
    the partition heals, no acknowledged record is lost and the old leader's unacknowledged
    tail is gone (unclean.leader.election.enable is false, the default)."""
    if os.geteuid() != 0:
        pytest.fail("the network-partition test needs root (network namespaces)")
    cl = cluster_factory(3, FAST, netns=True)
    topic = "netsplit"
    cl.create_topic(topic, 1, 3, {"min.insync.replicas": "2"}, assignment=[[1, 2, 3]])
    leader, _, isr = cl.partition(topic, 0)
    assert leader == 1 and isr == [1, 2, 3]
    log = AckLog()
    producer = Producer({
        "bootstrap.servers": cl.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        # A blackholed leader never answers: the client gives up on a request after
        # socket.timeout.ms (librdkafka's local limit for produce requests), then refreshes
        # its metadata and finds the new leader.
        "socket.timeout.ms": 5000,
        "debug": "eos,topic,metadata",
        "request.timeout.ms": 5000,
        "message.timeout.ms": 120_000,
        "retry.backoff.ms": 50,
    })
    stop = threading.Event()
    sent = [0]

    def record(i):
        return {"value": b"out%05d" % i, "partition": 0}

    produce = produce_loop(producer, topic, log, stop, sent, record, per_tick=50)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    loff = '{partition="0",topic="%s"}' % topic
    try:
        wait_until(lambda: log.count() >= 2000, 60, "2000 acknowledgements before the partition")
        cl.run("isolate", "1")
        cut_at = time.monotonic()
        # On its side, broker 1 still believes it leads: it takes records it cannot replicate.
        side = subprocess.Popen(
            [str(SCRIPT), "exec", "1", sys.executable, str(CLIENTS / "side_producer.py"),
             cl.addr(1), topic, "0", "side", "300", "8000"],
            env=cl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: cl.partition(topic, 0, via=2)[0] in (2, 3), 60,
                   "a new leader on the majority side")
        elected = time.monotonic() - cut_at
        new_leader = cl.partition(topic, 0, via=2)[0]
        wait_until(lambda: log.first_ack_after(cut_at, [0]) is not None, 60,
                   "an acknowledgement on the majority side")
        window = log.first_ack_after(cut_at, [0]) - cut_at
        out, err = side.communicate(timeout=120)
        assert side.returncode == 0, err[-2000:]
        side = json.loads(out)
        old_leo = cl.gauge(1, "samsa_log_end_offset", loff)
        old_hw = cl.gauge(1, "samsa_partition_high_watermark", loff)
        acked_during = log.count()
        wait_until(lambda: log.count() >= acked_during + 1000, 60,
                   "1000 more acknowledgements while broker 1 is cut off")
        cl.run("heal", "1")
        wait_until(lambda: cl.partition(topic, 0)[2] == [1, 2, 3], 60, "broker 1 back in the ISR")
    finally:
        stop.set()
    t.join(timeout=30)
    assert producer.flush(60) == 0, "records still unacknowledged"
    # Nothing produced on the isolated side was acknowledged, and it reached broker 1's log.
    assert side["acked"] == [], side["acked"][:5]
    assert len(side["failed"]) == 300 and side["unresolved"] == 0, side
    assert old_leo is not None and old_hw is not None and old_leo > old_hw, (old_leo, old_hw)
    assert not log.errors, log.errors[:5]
    n = sent[0]
    assert log.count() == n
    end = cl.gauge(new_leader, "samsa_log_end_offset", loff)
    wait_until(lambda: all(cl.gauge(b, "samsa_log_end_offset", loff) == end for b in (1, 2, 3)),
               30, "every replica at log end %s" % end)
    recs = read_all(cl.bootstrap, topic, 1, n)[0]
    values = [v for _, v in recs]
    assert not [v for v in values if v.startswith(b"side")], "an unacknowledged record survived"
    assert len(recs) == n, "read %d records, %d were acknowledged" % (len(recs), n)
    assert sorted(values) == [b"out%05d" % i for i in range(n)], "every record exactly once"
    at = {(p, o): v for p, o, v, _ in log.acked}
    for o, v in recs:
        assert at.get((0, o)) == v, "offset %d: not what was acknowledged" % o
    assert "truncating" in Path(cl.run("logs", "1").strip()).read_text()
    print("network partition: new leader %d seen in metadata after %.2f s, first acknowledgement "
          "outside after %.2f s; "
          "broker 1 had log end %d above its high watermark %d (%d unacknowledged records), "
          "truncated on rejoin; %d acknowledged records, all kept once"
          % (new_leader, elected, window, old_leo, old_hw, old_leo - old_hw, n))


def test_kcat_produces_and_consumes_through_the_cluster(cluster_factory):
    cl = cluster_factory(3, FAST)
    cl.create_topic("kc", 3, 3, {"min.insync.replicas": "2"})
    lines = "".join("m%04d\n" % i for i in range(1000))
    subprocess.run(["kcat", "-b", cl.bootstrap, "-P", "-t", "kc", "-X", "acks=all",
                    "-X", "enable.idempotence=true"], input=lines, text=True, check=True,
                   timeout=60)
    # Read through a broker that leads only some partitions: kcat follows the leaders.
    out = subprocess.run(["kcat", "-b", cl.addr(3), "-C", "-t", "kc", "-e",
                          "-q", "-f", "%p %o %s\n"], capture_output=True, text=True, check=True,
                         timeout=60).stdout.split("\n")
    got = sorted(line.split()[2] for line in out if line.strip())
    assert got == ["m%04d" % i for i in range(1000)]
    md = subprocess.run(["kcat", "-b", cl.bootstrap, "-L", "-t", "kc"], capture_output=True,
                        text=True, check=True, timeout=30).stdout
    assert md.count("isrs: ") == 3 and " 3 brokers:" in md, md
