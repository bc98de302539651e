"""Log compaction with confluent-kafka (librdkafka): a compacted topic created through the
AdminClient, 100,000 lz4-compressed updates over 1,000 keys, then a consumer from the beginning
sees exactly the latest value of each key at the offset where it was acknowledged."""

import random
import re

from conftest import http_get
from helpers import check_acks, recent_ms, run_client, stored_codecs, wait_until, write_records

DRIVER = "confluent_client.py"
KEYS = 1000
UPDATES = 100
TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.bytes": "16384",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "1500",
}


def metric(broker, name):
    status, body = http_get(broker.metrics_port, "/metrics")
    if status != 200:
        return None
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else None


def test_compacted_topic_keeps_latest_value_per_key(venv_latest, broker_factory, tmp_path):
    broker = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = "ck-compacted"
    created = run_client(venv_latest, DRIVER, "admin",
                         ["--op", "create-topic", "--bootstrap", broker.bootstrap,
                          "--topic", topic, "--partitions", 1]
                         + sum((["--config", "%s=%s" % kv] for kv in TOPIC_CONFIGS.items()), []),
                         tmp_path)
    assert created["error"] is None, created
    described = run_client(venv_latest, DRIVER, "admin",
                           ["--op", "describe-config", "--bootstrap", broker.bootstrap,
                            "--topic", topic], tmp_path)
    for k, v in TOPIC_CONFIGS.items():
        assert described["configs"][k]["value"] == v, (k, described["configs"][k])

    # Round u sets key k to "k<k>-u<u>". Then, in other batches, 1,000 records of other keys
    # with 100 incompressible bytes each (100 kB, several times segment.bytes) push the last
    # round out of the active segment, which the cleaner never touches.
    ts = recent_ms()
    rnd = random.Random(7)
    updates = [{"k": b"k%04d" % k, "v": b"k%04d-u%d" % (k, u), "h": [], "ts": ts, "p": 0}
               for u in range(UPDATES) for k in range(KEYS)]
    fresh = [{"k": b"f%04d" % i, "v": bytes(rnd.randrange(256) for _ in range(100)), "h": [],
              "ts": ts, "p": 0} for i in range(KEYS)]
    latest = {}
    for name, sent in (("updates", updates), ("fresh", fresh)):
        produced = run_client(venv_latest, DRIVER, "produce",
                              ["--bootstrap", broker.bootstrap, "--topic", topic,
                               "--records", write_records(tmp_path / (name + ".jsonl"), sent),
                               "--acks", "all", "--compression", "lz4", "--linger-ms", 20],
                              tmp_path)
        for (_p, o), i in sorted(check_acks(sent, produced).items()):
            latest[sent[i]["k"]] = (o, sent[i]["v"])
    assert len(latest) == 2 * KEYS
    assert "lz4" in stored_codecs(broker.data_dir, topic), "batches are stored compressed"

    # Every superseded update is removed exactly once.
    removed = wait_until(
        lambda: metric(broker, "samsa_log_cleaner_removed_records_total") == KEYS * (UPDATES - 1),
        25, "the cleaner to remove the 99,000 superseded updates")
    assert removed

    consumed = run_client(venv_latest, DRIVER, "consume",
                          ["--bootstrap", broker.bootstrap, "--topic", topic,
                           "--partitions", 1], tmp_path)
    assert not consumed["timed_out"] and not consumed["fetch_errors"], consumed["fetch_errors"]
    records = consumed["records"]
    offsets = [r["o"] for r in records]
    assert offsets == sorted(set(offsets)), "offsets strictly increase"
    got = {bytes.fromhex(r["k"]): (r["o"], bytes.fromhex(r["v"])) for r in records}
    assert len(got) == len(records) == 2 * KEYS, "one record per key: %d records" % len(records)
    assert got == latest, "each key holds its latest value at its acknowledged offset"
    assert sum(1 for k in got if k.startswith(b"k")) == KEYS
    assert int(consumed["beginning"]["0"]) == 0, "compaction keeps the log start"
