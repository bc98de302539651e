"""Producer ids are unique across a three-broker cluster (e2e/local-cluster), whichever broker a
producer asks: idempotent producers bootstrapped on different brokers write to one partition and
every acknowledged record is stored.

- six confluent-kafka idempotent producers, bootstrapped on brokers 1, 2, 3, 1, 2, 3, write
  1,000 records each to one partition (RF 3, min.insync.replicas 2): all 6,000 are read back,
  each once, at the offset its producer was told;
- three Java producers (kafka-clients' default: idempotent, acks=all), one bootstrapped on each
  broker, do the same with 1,000 records each."""

import threading
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer

from test_cluster import cluster_factory, read_all  # noqa: F401
from test_java import JavaClient, java_cmd  # noqa: F401

N = 1000


def make_topic(cl, name):
    cl.create_topic(name, 1, 3, {"min.insync.replicas": "2"})


def test_idempotent_producers_on_different_brokers_all_keep_their_records(cluster_factory):
    cl = cluster_factory(3)
    topic = "pids"
    make_topic(cl, topic)
    acked, errors = [], []
    lock = threading.Lock()

    def run(k, broker):
        p = Producer({"bootstrap.servers": cl.addr(broker), "enable.idempotence": True,
                      "acks": "all", "linger.ms": 2})

        def report(err, msg):
            with lock:
                if err is None:
                    acked.append((msg.offset(), msg.value()))
                else:
                    errors.append(err)

        for i in range(N):
            while True:
                try:
                    p.produce(topic, value=b"p%d-%d" % (k, i), partition=0, on_delivery=report)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        assert p.flush(60) == 0

    threads = [threading.Thread(target=run, args=(k, b))
               for k, b in enumerate([1, 2, 3, 1, 2, 3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:5]
    assert len(acked) == 6 * N
    offsets = [o for o, _ in acked]
    assert len(set(offsets)) == 6 * N, "two records were acknowledged at the same offset"
    stored = read_all(cl.bootstrap, topic, 1, 6 * N)[0]
    print("acknowledged %d, read back %d" % (len(acked), len(stored)))
    assert len(stored) == 6 * N, "read back %d of %d acknowledged records" % (len(stored), 6 * N)
    at = dict(stored)
    for o, v in acked:
        assert at.get(o) == v, "offset %d holds %r, acknowledged %r" % (o, at.get(o), v)
    per_producer = Counter(v.split(b"-")[0] for _, v in stored)
    assert per_producer == {b"p%d" % k: N for k in range(6)}, per_producer


def test_java_default_producers_on_different_brokers_all_keep_their_records(
        cluster_factory, java_cmd, tmp_path):  # noqa: F811
    cl = cluster_factory(3)
    topic = "pids-java"
    make_topic(cl, topic)
    clients = []
    for b in (1, 2, 3):
        acks = Path(tmp_path) / ("acks-%d" % b)
        clients.append((JavaClient(java_cmd, tmp_path, "producer-%d" % b,
                                   ["produce", cl.addr(b), topic, N, 0, acks]), acks))
    acked = []
    for client, acks in clients:
        res = client.finish(timeout=180)
        assert res.get("failed", 0) == 0, res
        lines = acks.read_text().split("\n")
        for line in filter(None, lines):
            seq, partition, offset = line.split()
            assert partition == "0"
            acked.append((int(offset), seq))
    assert len(acked) == 3 * N
    assert len({o for o, _ in acked}) == 3 * N, "two records were acknowledged at one offset"
    stored = read_all(cl.bootstrap, topic, 1, 3 * N)[0]
    print("Java: acknowledged %d, read back %d" % (len(acked), len(stored)))
    assert len(stored) == 3 * N, "read back %d of %d acknowledged records" % (len(stored), 3 * N)
    # Every producer sends seq=0..N-1: each value is stored once per producer.
    values = Counter(v for _, v in stored)
    assert values == {b"seq=%d" % i: 3 for i in range(N)}
    at = dict(stored)
    for o, seq in acked:
        assert at.get(o) == b"seq=" + seq.encode(), (o, at.get(o), seq)
