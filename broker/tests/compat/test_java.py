"""The official Java client (org.apache.kafka:kafka-clients 3.9.x from Maven Central, built into
broker/tests/compat/java/target by scripts/test-deps.sh).

The default producer (idempotent, acks=all) sends 100,000 keyed records into a 6-partition topic
while the test kill -9s and restarts the broker twice and once freezes it (SIGSTOP) for longer
than the producer's request.timeout.ms, so that the client drops its connection and retries on a
new one while the frozen broker still holds the old requests. Then two consumers sharing a group
read the topic back: exactly the 100,000 records, each once in the log (retries deduplicated by
the producer id/sequence checks), at the offsets the producer was told, no holes, and per
partition every key's sequence numbers increase."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import http_get
from helpers import tail, wait_until
from test_cluster import FAST, cluster_factory  # noqa: F401  (the fixture)

JAVA_DIR = Path(__file__).resolve().parent / "java"
JAR = JAVA_DIR / "target" / "samsa-compat-java.jar"
LIB = JAVA_DIR / "target" / "lib"
MAIN = "samsa.compat.Compat"

N = 100_000
RATE = 2500          # records/s: production spans ~40 s, so the restarts land mid-stream
PARTITIONS = 6
KEYS = 100
REQUEST_TIMEOUT_MS = 5000
TOPIC = "java-idem"
GROUP = "java-compat"


def group_committed(bootstrap, group, topic, partitions):
    """The group's committed offsets (OffsetFetch, by librdkafka's admin client), by partition."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)])
    answer = admin.list_consumer_group_offsets([request], request_timeout=15)[group].result(30)
    return {tp.partition: tp.offset for tp in answer.topic_partitions}


def sources_hash():
    """The hash scripts/test-deps.sh stamps a build with: sha256sum over pom.xml and src/."""
    files = [JAVA_DIR / "pom.xml"] + [p for p in (JAVA_DIR / "src").rglob("*") if p.is_file()]
    rel = sorted(str(f.relative_to(JAVA_DIR)).encode() for f in files)
    listing = b"".join(b"%s  %s\n" % (hashlib.sha256((JAVA_DIR / r.decode()).read_bytes())
                                       .hexdigest().encode(), r) for r in rel)
    return hashlib.sha256(listing).hexdigest()


@pytest.fixture(scope="session")
def java_cmd():
    java = shutil.which("java")
    if java is None:
        pytest.fail("java not installed: run scripts/test-deps.sh", pytrace=False)
    if not JAR.exists() or not any(LIB.glob("kafka-clients-*.jar")):
        pytest.fail("Java driver not built (%s): run scripts/test-deps.sh" % JAR, pytrace=False)
    try:
        stamp = (JAVA_DIR / "target" / ".samsa-stamp").read_text()
    except OSError:
        stamp = ""
    if stamp != "sources=" + sources_hash():
        pytest.fail("Java driver %s was not built from the current sources: run "
                    "scripts/test-deps.sh" % JAR, pytrace=False)
    return [java, "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-cp", "%s:%s/*" % (JAR, LIB)]


class JavaClient:
    """One background run of the Java driver; stdout is JSON lines, the last one the result."""

    def __init__(self, java_cmd, workdir, name, args, jvm_props=()):
        self.name = name
        self.out = Path(workdir) / ("java-%s.stdout" % name)
        self.err = Path(workdir) / ("java-%s.stderr" % name)
        cmd = list(java_cmd[:1]) + ["-D%s" % p for p in jvm_props] + list(java_cmd[1:]) \
            + [MAIN] + [str(a) for a in args]
        self.cmd = cmd
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)

    def lines(self):
        out = []
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out

    def last_progress(self):
        for obj in reversed(self.lines()):
            if "progress" in obj:
                return obj["progress"]
        return {}

    def events(self):
        return [o for o in self.lines() if "event" in o]

    def check_alive(self):
        if self.proc.poll() is not None and self.result() is None:
            pytest.fail("java %s exited %s without a result\n%s"
                        % (self.name, self.proc.returncode, tail(self.err)), pytrace=False)

    def result(self):
        for obj in reversed(self.lines()):
            if "result" in obj:
                return obj["result"]
        return None

    def finish(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("java %s did not finish within %ss; last progress %s\n%s"
                        % (self.name, timeout, self.last_progress(), tail(self.err)),
                        pytrace=False)
        res = self.result()
        if self.proc.returncode != 0 or res is None:
            pytest.fail("java %s exited %s, result %s\n%s"
                        % (self.name, self.proc.returncode, res, tail(self.err)), pytrace=False)
        return res

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def acked(producer, broker):
    producer.check_alive()
    if broker.crashed() is not None:
        pytest.fail("broker died by itself\n%s" % broker.log_tail(), pytrace=False)
    return producer.last_progress().get("acked", 0)


def wait_acked(producer, broker, target, timeout=90):
    try:
        wait_until(lambda: acked(producer, broker) >= target, timeout,
                   "producer to have %d acknowledged records" % target, interval=0.1)
    except TimeoutError as e:
        pytest.fail("%s; last progress %s\n%s" % (e, producer.last_progress(),
                                                  tail(producer.err)), pytrace=False)


def log_end_offsets(broker, topic):
    """{partition: log end offset} from the broker's /metrics."""
    status, body = http_get(broker.metrics_port, "/metrics")
    assert status == 200, "GET /metrics: %s %s" % (status, body[:200])
    ends = {}
    pat = re.compile(r'^samsa_log_end_offset\{([^}]*)\}\s+(\d+)', re.M)
    for labels, value in pat.findall(body):
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if lab.get("topic") == topic:
            ends[int(lab["partition"])] = int(value)
    return ends


def read_acks(path):
    acks, errors = {}, []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            errors.append(int(parts[0]))
            continue
        seq, p, o = (int(x) for x in parts)
        assert seq not in acks, "record seq %d acknowledged twice: %s and %s" % (
            seq, acks[seq], (p, o))
        acks[seq] = (p, o)
    return acks, errors


def read_consumed(paths):
    """[(member, partition, offset, key, seq)] from the consumers' output files."""
    got = []
    for member, path in enumerate(paths):
        if not Path(path).exists():
            continue
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue  # a line being written
            p, o, k, s = parts
            got.append((member, int(p), int(o), k, int(s) if s.lstrip("-").isdigit() else s))
    return got


def stored_batches(data_dir, topic, partition):
    """[(base offset, records, producer id, epoch, base sequence)] of a partition's segment files
    (Kafka's layout: <topic>-<partition>/<base offset>.log of RecordBatch v2 as produced)."""
    out = []
    for f in sorted(Path(data_dir).glob("%s-%d/*.log" % (topic, partition))):
        data = f.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
            if length <= 0 or pos + 12 + length > len(data):
                break  # preallocated or torn tail
            field = lambda at, n: int.from_bytes(data[pos + at:pos + at + n], "big", signed=True)
            out.append((field(0, 8), field(57, 4), field(43, 8), field(51, 2), field(53, 4)))
            pos += 12 + length
    return out


def check_idempotent_batches(data_dir, topic, partitions):
    """Every stored batch carries a producer id, and per partition and (producer id, epoch) the
    base sequences follow each other without gap or overlap. Returns the (id, epoch) pairs."""
    seen = set()
    for p in range(partitions):
        nxt = {}
        for base, count, pid, epoch, seq in stored_batches(data_dir, topic, p):
            assert pid >= 0 and epoch >= 0 and seq >= 0, (
                "partition %d offset %d: batch without producer id/sequence (pid %d epoch %d "
                "seq %d): the default producer was not idempotent" % (p, base, pid, epoch, seq))
            want = nxt.get((pid, epoch), 0)
            assert seq == want, ("partition %d offset %d: producer %d epoch %d base sequence %d, "
                                 "expected %d" % (p, base, pid, epoch, seq, want))
            nxt[(pid, epoch)] = seq + count
            seen.add((pid, epoch))
    return sorted(seen)


def harness_note(broker, text):
    with open(broker.log_path, "ab") as log:
        log.write(("\n=== compat harness (test_java): %s\n" % text).encode())


def test_java_idempotent_producer_survives_restarts_and_group_reads_back(
        broker_factory, java_cmd, tmp_path, monkeypatch):
    t0 = time.monotonic()
    # The broker logs each deduplicated retry at debug: counted in the summary line.
    if "SAMSA_COMPAT_BROKER_LOG" not in os.environ:
        monkeypatch.setenv("SAMSA_COMPAT_BROKER_LOG",
                           "info,samsa_broker::server::handlers::produce=debug")
    broker = broker_factory("--num-partitions", str(PARTITIONS),
                            "--group-initial-rebalance-delay-ms", "500",
                            "--group-min-session-timeout-ms", "1000")
    acks_path = tmp_path / "acks.txt"
    producer = JavaClient(
        java_cmd, tmp_path, "producer",
        ["produce", broker.bootstrap, TOPIC, N, RATE, acks_path,
         "request.timeout.ms=%d" % REQUEST_TIMEOUT_MS],
        # NetworkClient logs "Disconnecting from node ... due to request timeout" at INFO.
        jvm_props=["org.slf4j.simpleLogger.log.org.apache.kafka.clients.NetworkClient=info"])
    disruptions = []
    try:
        # Two kill -9 restarts, each after the producer has made progress since the last one.
        for target in (N // 10, 3 * N // 10):
            wait_acked(producer, broker, target)
            before = acked(producer, broker)
            broker.restart()
            disruptions.append(("kill -9 + restart", before))
        # Freeze the broker for longer than request.timeout.ms: the client gives up on its
        # in-flight requests, closes the connection and resends on a new one; the frozen broker
        # still has the old requests in its socket buffer and handles them when it thaws.
        wait_acked(producer, broker, N // 2)
        before = acked(producer, broker)
        timeouts = producer.err.read_text(errors="replace").count("due to request timeout")
        harness_note(broker, "SIGSTOP")
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: producer.err.read_text(errors="replace")
                       .count("due to request timeout") > timeouts,
                       REQUEST_TIMEOUT_MS / 1000 + 20,
                       "the producer to drop its connection after request.timeout.ms",
                       interval=0.1)
        finally:
            broker.proc.send_signal(signal.SIGCONT)
            harness_note(broker, "SIGCONT")
        disruptions.append(("SIGSTOP until request timeout, SIGCONT", before))

        produced = producer.finish(timeout=100)
    finally:
        producer.kill()
    t_produced = time.monotonic()
    assert produced["failed"] == 0 and produced["acked"] == N, (
        "producer: %d acknowledged, %d failed of %d; errors %s; first: %s"
        % (produced["acked"], produced["failed"], N, produced["errors"],
           produced["first_errors"]))
    acks, ack_errors = read_acks(acks_path)
    assert not ack_errors and len(acks) == N, (len(acks), ack_errors[:10])

    # Once more kill -9 before reading back: everything acknowledged is on disk.
    broker.restart()
    ends = log_end_offsets(broker, TOPIC)
    assert sorted(ends) == list(range(PARTITIONS)), "partitions in /metrics: %s" % ends
    total = sum(ends.values())

    producer_epochs = check_idempotent_batches(broker.data_dir, TOPIC, PARTITIONS)

    # Two consumers sharing a group read the topic back.
    stop = tmp_path / "consumers.stop"
    outs = [tmp_path / ("consumer%d.out" % i) for i in range(2)]
    consumers = [JavaClient(java_cmd, tmp_path, "consumer%d" % i,
                            ["consume", broker.bootstrap, TOPIC, GROUP, outs[i], stop, 90,
                             "session.timeout.ms=6000", "heartbeat.interval.ms=500"])
                 for i in range(2)]
    try:
        def all_read():
            for c in consumers:
                c.check_alive()
            return len({(p, o) for _m, p, o, _k, _s in read_consumed(outs)}) >= total
        try:
            wait_until(all_read, 60, "the group to read all %d records in the log" % total,
                       interval=0.2)
        except TimeoutError as e:
            pytest.fail("%s: read %d; %s" % (e, len(read_consumed(outs)), "\n".join(
                "%s events %s\n%s" % (c.name, c.events()[-10:], tail(c.err, 30))
                for c in consumers)), pytrace=False)
        stop.touch()
        results = [c.finish(timeout=30) for c in consumers]
    finally:
        for c in consumers:
            c.kill()
    t_consumed = time.monotonic()
    cancelled = producer.err.read_text(errors="replace").count("Cancelled in-flight PRODUCE")
    deduplicated = broker.log_text().count("duplicate batch answered")
    print("java: produced %d in %.1fs, log holds %d, consumed in %.1fs, total %.1fs; "
          "disruptions at acked=%s; %d in-flight produce requests cancelled by the client; "
          "%d retried batches deduplicated by the broker; (producer id, epoch) in the log %s; "
          "consumers (records, commits, commit failures) %s"
          % (N, t_produced - t0, total, t_consumed - t_produced, t_consumed - t0,
             [d[1] for d in disruptions], cancelled, deduplicated, producer_epochs,
             [(r["records"], r["commits"], r["commit_failures"]) for r in results]))

    for i, r in enumerate(results):
        assert not r["timed_out"], "consumer %d timed out" % i
        assert r["commit_failures"] == 0, "consumer %d: commits failed: %s" % (
            i, r["commit_errors"])
        assert {int(p): e for p, e in r["end"].items()} == ends, (
            "consumer %d end offsets %s, /metrics %s" % (i, r["end"], ends))
        # Each member's last commits, read back with OffsetFetch: its partitions' log ends.
        want = {p: ends[int(p)] for p in r["committed"]}
        assert r["committed"] == want, "consumer %d: committed offsets %s, log ends %s" % (
            i, r["committed"], want)
    # After both members have left: the group's committed offsets of every partition are the
    # log ends. (Not each member's final assignment: the first member to leave starts a
    # rebalance, and the other may stop in the middle of it, holding no partitions.)
    group = group_committed(broker.bootstrap, GROUP, TOPIC, PARTITIONS)
    assert group == ends, "group %s committed offsets %s, log ends %s" % (GROUP, group, ends)

    consumed = read_consumed(outs)
    # The group delivered each log position once (commits after every poll, before the next
    # one, so a rebalance never hands processed records to another member).
    seen = {}
    for m, p, o, k, s in consumed:
        assert (p, o) not in seen, "(partition %d, offset %d) delivered twice: members %d, %d" % (
            p, o, seen[(p, o)][0], m)
        seen[(p, o)] = (m, k, s)
    members = {m for m, *_ in consumed}

    # The log: offsets 0..end-1 per partition, no holes.
    for p in range(PARTITIONS):
        offs = sorted(o for (pp, o) in seen if pp == p)
        assert offs == list(range(ends[p])), (
            "partition %d: consumed %d offsets, log end %d; first missing %s"
            % (p, len(offs), ends[p], sorted(set(range(ends[p])) - set(offs))[:10]))

    # Exactly the N records once each: the retries after the restarts and the frozen broker
    # were deduplicated.
    where = defaultdict(list)
    for (p, o), (_m, k, s) in seen.items():
        where[s].append((p, o))
    dups = {s: sorted(pos) for s, pos in where.items() if len(pos) > 1}
    missing = sorted(set(range(N)) - set(where))
    foreign = sorted((s for s in where if not isinstance(s, int) or not 0 <= s < N), key=str)
    assert not dups and not missing and not foreign and total == N, (
        "log holds %d records for %d sent: %d duplicated seqs (e.g. %s), %d missing (e.g. %s), "
        "%d unknown values (e.g. %s); disruptions: %s"
        % (total, N, len(dups), list(dups.items())[:5], len(missing), missing[:10],
           len(foreign), foreign[:5], disruptions))

    # Each record where the producer was told it is, under its key.
    wrong = [(s, acks[s], where[s][0]) for s in range(N) if where[s][0] != acks[s]]
    assert not wrong, "%d records not at their acknowledged position, e.g. (seq, ack, log) %s" % (
        len(wrong), wrong[:5])
    for (p, o), (_m, k, s) in seen.items():
        assert k == "k%d" % (s % KEYS), "key %s for seq %d at %s" % (k, s, (p, o))

    # Order kept: per partition, each key's sequence numbers increase with the offset; a key
    # lives in one partition.
    last = {}
    key_part = {}
    for (p, o) in sorted(seen):
        _m, k, s = seen[(p, o)]
        assert key_part.setdefault(k, p) == p, "key %s in partitions %d and %d" % (
            k, key_part[k], p)
        assert s > last.get(k, -1), "partition %d offset %d: key %s seq %d after seq %d" % (
            p, o, k, s, last[k])
        last[k] = s

    # The group really shared the work: both members got partitions and read records.
    assigned = [[e["partitions"] for e in c.events() if e["event"] == "assigned"]
                for c in consumers]
    assert all(any(a) for a in assigned), "partition assignments per member: %s" % assigned
    assert members == {0, 1}, "records read per member: %s" % [
        sum(1 for m, *_ in consumed if m == i) for i in range(2)]


CLUSTER_N = 20_000
CLUSTER_PARTITIONS = 3


def test_java_clients_against_a_three_broker_cluster(cluster_factory, java_cmd, tmp_path):
    """The Java producer (idempotent, acks=all) against three brokers while the leader of a
    partition is killed (-9) and restarted; then two Java consumers in a group read the topic
    back through the cluster: every record once, at its acknowledged position, in order per key,
    and the group's commits at the log ends."""
    cl = cluster_factory(3, FAST + ["--group-initial-rebalance-delay-ms=500",
                                    "--group-min-session-timeout-ms=1000"])
    topic = "java-cluster"
    cl.create_topic(topic, CLUSTER_PARTITIONS, 3, {"min.insync.replicas": "2"})
    acks_path = tmp_path / "acks.txt"
    producer = JavaClient(java_cmd, tmp_path, "cluster-producer",
                          ["produce", cl.bootstrap, topic, CLUSTER_N, 2000, acks_path,
                           "request.timeout.ms=5000"])

    def wait_acked(target):
        def progress():
            producer.check_alive()
            return producer.last_progress().get("acked", 0) >= target
        wait_until(progress, 90, "%d acknowledged records" % target, interval=0.1)

    try:
        wait_acked(CLUSTER_N // 4)
        victim = cl.partition(topic, 0)[0]
        killed_at = time.monotonic()
        cl.run("kill", str(victim))
        before = producer.last_progress().get("acked", 0)
        wait_acked(before + 1000)
        resumed = time.monotonic() - killed_at
        cl.run("start", str(victim))
        wait_until(lambda: all(len(cl.partition(topic, p)[2]) == 3
                               for p in range(CLUSTER_PARTITIONS)), 60, "the ISR whole again")
        produced = producer.finish(timeout=120)
    finally:
        producer.kill()
    assert produced["failed"] == 0 and produced["acked"] == CLUSTER_N, produced
    acks, ack_errors = read_acks(acks_path)
    assert not ack_errors and len(acks) == CLUSTER_N

    def end_offsets():
        out = {}
        for p in range(CLUSTER_PARTITIONS):
            leader = cl.partition(topic, p)[0]
            out[p] = int(cl.gauge(leader, "samsa_partition_high_watermark",
                                  '{partition="%d",topic="%s"}' % (p, topic)))
        return out
    ends = end_offsets()
    assert sum(ends.values()) == CLUSTER_N, ends

    stop = tmp_path / "cluster-consumers.stop"
    outs = [tmp_path / ("cluster-consumer%d.out" % i) for i in range(2)]
    consumers = [JavaClient(java_cmd, tmp_path, "cluster-consumer%d" % i,
                            ["consume", cl.bootstrap, topic, "java-cluster-group", outs[i], stop,
                             90, "session.timeout.ms=6000", "heartbeat.interval.ms=500"])
                 for i in range(2)]
    try:
        def all_read():
            for c in consumers:
                c.check_alive()
            return len({(p, o) for _m, p, o, _k, _s in read_consumed(outs)}) >= CLUSTER_N
        wait_until(all_read, 90, "the group to read all %d records" % CLUSTER_N, interval=0.2)
        stop.touch()
        results = [c.finish(timeout=30) for c in consumers]
    finally:
        for c in consumers:
            c.kill()
    seen = {}
    for m, p, o, k, s in read_consumed(outs):
        assert (p, o) not in seen, "(partition %d, offset %d) delivered twice" % (p, o)
        seen[(p, o)] = (m, k, s)
    where = {s: (p, o) for (p, o), (_m, _k, s) in seen.items()}
    assert len(where) == len(seen) == CLUSTER_N, "records once each"
    assert sorted(where) == list(range(CLUSTER_N))
    wrong = [s for s in range(CLUSTER_N) if where[s] != acks[s]]
    assert not wrong, "%d records not at their acknowledged position, e.g. %s" % (
        len(wrong), [(s, acks[s], where[s]) for s in wrong[:5]])
    last = {}
    for (p, o) in sorted(seen):
        _m, k, s = seen[(p, o)]
        assert s > last.get(k, -1), "partition %d offset %d: key %s out of order" % (p, o, k)
        last[k] = s
    committed = {}
    for r in results:
        assert r["commit_failures"] == 0, r["commit_errors"]
        committed.update({int(p): o for p, o in r["committed"].items()})
    assert committed == ends, "committed %s, log ends %s" % (committed, ends)
    assert {m for m, *_ in read_consumed(outs)} == {0, 1}, "both members read records"
    print("java on three brokers: %d records acknowledged; leader %d killed, 1000 more "
          "acknowledged %.2f s later; two group members read them back once each, commits at "
          "the log ends"
          % (CLUSTER_N, victim, resumed))
