"""A broker whose log directory fails writes gives up its leaderships (e2e/local-cluster, three
brokers). Broker 3's data directory is moved onto a small tmpfs, broker 3 leads partition 0 of
a topic (RF 3, min.insync.replicas 2), and the tmpfs is filled while an idempotent acks=all
confluent-kafka producer writes. Broker 3's writes fail (ENOSPC): its /healthz answers 503
naming the log directory, it leads nothing and is in no ISR, the producer sees no delivery
error, and every acknowledged record is read back at its acknowledged offset.

Needs root (mount); the tmpfs is unmounted at the end."""

import os
import shutil
import subprocess
import threading
import time

from conftest import http_get
from helpers import wait_until
from test_cluster import (  # noqa: F401  (cluster_factory is a fixture)
    AckLog, cluster_factory, idempotent_producer, produce_loop, read_all)

TOPIC = "fulldisk"
ARGS = ["--controlled-shutdown-timeout-ms=15000", "--leader-imbalance-check-interval-seconds=1"]


def test_a_full_log_directory_moves_leadership_away(cluster_factory, tmp_path):
    cl = cluster_factory(3, ARGS)
    cl.create_topic(TOPIC, 3, 3, {"min.insync.replicas": "2"},
                    assignment=[[3, 1, 2], [1, 2, 3], [2, 3, 1]])
    data = tmp_path / "cluster" / "broker-3" / "data"
    disk = tmp_path / "broker-3-data-on-disk"
    cl.run("stop", "3")
    data.rename(disk)
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)], check=True)
    mounted = True
    log = AckLog()
    stop = threading.Event()
    t = None
    try:
        subprocess.run(["cp", "-a", "%s/." % disk, str(data)], check=True)
        cl.run("start", "3")
        wait_until(lambda: cl.partition(TOPIC, 0, via=1)[0] == 3
                   and len(cl.partition(TOPIC, 0, via=1)[2]) == 3, 60,
                   "broker 3 leading partition 0 again (preferred leader)")
        producer = idempotent_producer(cl.bootstrap)
        sent = [0]
        value = os.urandom(4096)

        def record(i):
            return {"partition": i % 3, "key": b"%d" % i, "value": b"%08d" % i + value}

        t = threading.Thread(target=produce_loop(producer, TOPIC, log, stop, sent, record, 10),
                             daemon=True)
        t.start()
        wait_until(lambda: log.count() >= 300, 60, "the first 300 acknowledgements")
        # Fill the tmpfs, leaving 256 KiB: the next segment writes on broker 3 fail.
        st = os.statvfs(data)
        free = st.f_bavail * st.f_frsize
        with open(data / "filler", "wb") as f:
            f.write(b"\0" * max(0, free - 256 * 1024))
        filled = time.monotonic()
        metrics_port = cl.base + 30000 + 2

        def unhealthy():
            status, body = http_get(metrics_port, "/healthz")
            return body if status == 503 else None

        body = wait_until(unhealthy, 60, "broker 3's /healthz answering 503")
        unhealthy_at = time.monotonic()
        assert "log directory" in body, body

        def gone():
            parts = [cl.partition(TOPIC, p, via=1) for p in range(3)]
            return all(leader != 3 and 3 not in isr for leader, _, isr in parts)

        wait_until(gone, 60, "broker 3 leading nothing and out of every ISR")
        moved_at = time.monotonic()
        before = log.count()
        wait_until(lambda: log.count() >= before + 300, 60, "production going on without broker 3")
    finally:
        stop.set()
        if t is not None:
            t.join(timeout=30)
        cl.run("kill", "3", check=False)
        if mounted:
            subprocess.run(["umount", "-l", str(data)], check=False)
    assert producer.flush(60) == 0, "records still unacknowledged"
    print("broker 3's disk filled: /healthz 503 after %.2f s, leaderships and ISR places gone "
          "after %.2f s" % (unhealthy_at - filled, moved_at - filled))
    assert not log.errors, log.errors[:5]
    n = sent[0]
    assert len(log.acked) == n
    consumed = read_all(cl.addr(1), TOPIC, 3, n)
    total = sum(len(v) for v in consumed.values())
    assert total == n, "consumed %d records, %d were acknowledged" % (total, n)
    at = {(p, o): v for p, o, v, _ in log.acked}
    for p, recs in consumed.items():
        for o, v in recs:
            assert at.get((p, o)) == v, "partition %d offset %d differs" % (p, o)
    shutil.rmtree(disk, ignore_errors=True)
