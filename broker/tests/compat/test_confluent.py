"""confluent-kafka (librdkafka bundled in the wheel): Producer with acks/linger/compression
variants, kill -9, Consumer with assign(OFFSET_BEGINNING) and a group.id but no group use;
AdminClient topic lifecycle; ListOffsets via get_watermark_offsets and offsets_for_times."""

import random
import zlib

import pytest

from helpers import (assert_codec, check_acked_durable, check_acks, check_from_offset,
                     check_roundtrip, expected_for_time, finish_client, make_records, query_times,
                     recent_ms, run_client, start_client, stored_codecs, timed_records, wait_until,
                     write_records)

DRIVER = "confluent_client.py"
VARIANTS = {
    "acks_all": {"acks": "all", "compression": "none"},
    "acks_1": {"acks": "1", "compression": "none"},
    "lz4_acks_all": {"acks": "all", "compression": "lz4"},
    "zstd_acks_all": {"acks": "all", "compression": "zstd"},
    "snappy_acks_all": {"acks": "all", "compression": "snappy"},
}
N = 2000
PARTITIONS = 3


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_roundtrip_survives_kill9(variant, venv_latest, broker_factory, tmp_path):
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    topic = "ck-%s" % variant.replace("_", "-")
    sent = make_records(N, seed=zlib.crc32(variant.encode()))
    produced = run_client(venv_latest, DRIVER, "produce",
                          ["--bootstrap", broker.bootstrap, "--topic", topic,
                           "--records", write_records(tmp_path / "records.jsonl", sent),
                           "--acks", VARIANTS[variant]["acks"],
                           "--compression", VARIANTS[variant]["compression"],
                           "--linger-ms", 20], tmp_path)
    check_acks(sent, produced)
    codec = VARIANTS[variant]["compression"]
    assert_codec(stored_codecs(broker.data_dir, topic), codec)

    broker.restart()

    consumed = run_client(venv_latest, DRIVER, "consume",
                          ["--bootstrap", broker.bootstrap, "--topic", topic,
                           "--partitions", PARTITIONS], tmp_path)
    assert not consumed["fetch_errors"], consumed["fetch_errors"][:5]
    check_roundtrip(sent, produced, consumed, PARTITIONS)

    start = 101  # inside a batch: batches hold many records each with these settings
    partial = run_client(venv_latest, DRIVER, "consume",
                         ["--bootstrap", broker.bootstrap, "--topic", topic,
                          "--partitions", PARTITIONS, "--start-offset", start], tmp_path)
    check_from_offset(consumed, partial, start)


def test_kill9_during_produce(venv_latest, broker_factory, tmp_path):
    """kill -9 while a paced producer (acks=all) is mid-stream; the producer retries into the
    restarted broker. Every acknowledged record must be at its acknowledged offset."""
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    n = 8000
    sent = make_records(n, seed=99, nulls=False)
    proc, out, err = start_client(
        venv_latest, DRIVER, "produce",
        ["--bootstrap", broker.bootstrap, "--topic", "ck-crash", "--records",
         write_records(tmp_path / "records.jsonl", sent), "--acks", "all", "--linger-ms", 5,
         "--rate", 2000, "--timeout", 120], tmp_path)
    try:
        wait_until(lambda: "progress acked=2000" in err.read_text() or proc.poll() is not None,
                   60, "2000 acknowledged records")
        assert proc.poll() is None, "producer finished before the kill: raise n or lower rate"
        broker.kill9()
        broker.start()
        produced = finish_client(proc, out, err, timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    consumed = run_client(venv_latest, DRIVER, "consume",
                          ["--bootstrap", broker.bootstrap, "--topic", "ck-crash",
                           "--partitions", PARTITIONS], tmp_path)
    extra = check_acked_durable(sent, produced, consumed, PARTITIONS)
    print("records acknowledged: %d, extra retried copies in the log: %d" % (n, extra))


def test_large_records(venv_latest, venv_kp202, broker_factory, tmp_path):
    """A record just under message.max.bytes (1048588) is stored and fetched whole, also by
    consumers whose per-partition fetch limit is far smaller than its batch (Fetch v3+ returns
    the first batch whole); one over the limit is refused with MESSAGE_TOO_LARGE."""
    broker = broker_factory()
    topic = "ck-large"
    rnd = random.Random(7)
    big = bytes(rnd.randrange(256) for _ in range(1_040_000))
    ts = recent_ms()
    sent = [{"k": b"small-1", "v": b"a", "h": [], "ts": ts, "p": 0},
            {"k": b"big", "v": big, "h": [("h", b"x")], "ts": ts + 1, "p": 0},
            {"k": b"small-2", "v": b"b", "h": [], "ts": ts + 2, "p": 0}]
    produced = run_client(venv_latest, DRIVER, "produce",
                          ["--bootstrap", broker.bootstrap, "--topic", topic,
                           "--records", write_records(tmp_path / "large.jsonl", sent),
                           "--set", "message.max.bytes=2000000"], tmp_path)
    check_acks(sent, produced)
    too_big = [{"k": b"too-big", "v": big + bytes(100_000), "h": [], "ts": ts + 3, "p": 0}]
    refused = run_client(venv_latest, DRIVER, "produce",
                         ["--bootstrap", broker.bootstrap, "--topic", topic,
                          "--records", write_records(tmp_path / "too-big.jsonl", too_big),
                          "--set", "message.max.bytes=2000000"], tmp_path)
    assert refused["results"][0].get("code") == "MSG_SIZE_TOO_LARGE", refused["results"]

    broker.restart()

    for python, driver in [(venv_latest, DRIVER), (venv_latest, "kafka_python_client.py"),
                           (venv_kp202, "kafka_python_client.py")]:
        consumed = run_client(python, driver, "consume",
                              ["--bootstrap", broker.bootstrap, "--topic", topic,
                               "--partitions", 1, "--max-partition-fetch-bytes", 65536],
                              tmp_path)
        check_roundtrip(sent, produced, consumed, 1)


def test_list_offsets(venv_latest, broker_factory, tmp_path):
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    topic = "ck-offsets"
    per_partition = 50
    base = recent_ms()
    sent = timed_records(base, per_partition, PARTITIONS)
    produced = run_client(venv_latest, DRIVER, "produce",
                          ["--bootstrap", broker.bootstrap, "--topic", topic, "--records",
                           write_records(tmp_path / "timed.jsonl", sent)], tmp_path)
    by_pos = check_acks(sent, produced)
    assert sorted(by_pos) == [(p, j) for p in range(PARTITIONS) for j in range(per_partition)]

    times = query_times(base, per_partition)
    for phase in ("before kill -9", "after restart"):
        if phase == "after restart":
            broker.restart()
        out = run_client(venv_latest, DRIVER, "offsets",
                         ["--bootstrap", broker.bootstrap, "--topic", topic,
                          "--partitions", PARTITIONS, "--times", ",".join(map(str, times))],
                         tmp_path)
        for p in range(PARTITIONS):
            assert out["beginning"][str(p)] == 0, (phase, out["beginning"])
            assert out["end"][str(p)] == per_partition, (phase, out["end"])
        for t in times:
            got = out["for_times"][str(t)]
            # librdkafka reports "no such offset" as OFFSET_END (-1) and drops the timestamp.
            want = {}
            for p in range(PARTITIONS):
                e = expected_for_time(base, per_partition, p, t)
                want[str(p)] = {"offset": -1 if e is None else e[0], "error": None}
            assert got == want, "%s: offsets_for_times(%d) = %s, want %s" % (phase, t, got, want)


class Admin:
    def __init__(self, python, broker, workdir):
        self.python, self.broker, self.workdir = python, broker, workdir

    def __call__(self, op, topic=None, partitions=None, config=()):
        args = ["--op", op, "--bootstrap", self.broker.bootstrap]
        if topic is not None:
            args += ["--topic", topic]
        if partitions is not None:
            args += ["--partitions", partitions]
        for kv in config:
            args += ["--config", kv]
        return run_client(self.python, DRIVER, "admin", args, self.workdir, timeout=90)

    def ok(self, op, **kw):
        out = self(op, **kw)
        assert out["error"] is None, "%s %s failed: %s" % (op, kw, out["error"])
        return out


def test_admin_topic_lifecycle(venv_latest, broker_factory, tmp_path):
    broker = broker_factory("--auto-create-topics-enable", "false")
    admin = Admin(venv_latest, broker, tmp_path)
    topic = "adm-lifecycle"

    md = admin.ok("list-topics")
    assert md["brokers"] == {"1": broker.bootstrap}, md["brokers"]
    assert topic not in md["topics"]

    admin.ok("create-topic", topic=topic, partitions=3,
             config=["retention.ms=3600000", "cleanup.policy=delete", "max.message.bytes=2000000"])

    def partitions_of(md):
        t = md["topics"].get(topic)
        assert t is not None, "topic %s not listed: %s" % (topic, sorted(md["topics"]))
        assert t["error"] is None, t
        return t["partitions"]

    parts = partitions_of(admin.ok("list-topics"))
    assert sorted(parts, key=int) == ["0", "1", "2"], parts
    for p in parts.values():
        assert p["leader"] == 1 and p["replicas"] == [1] and p["isrs"] == [1] \
            and p["error"] is None, parts

    def check_configs():
        cfg = admin.ok("describe-config", topic=topic)["configs"]
        for name, value in [("retention.ms", "3600000"), ("cleanup.policy", "delete"),
                            ("max.message.bytes", "2000000")]:
            assert name in cfg, "%s missing from describe_configs: %s" % (name, sorted(cfg))
            e = cfg[name]
            assert e["value"] == value and e["source"] == "DYNAMIC_TOPIC_CONFIG" \
                and not e["is_default"], "%s: %s" % (name, e)
        assert "segment.bytes" in cfg, sorted(cfg)
        assert cfg["segment.bytes"]["source"] != "DYNAMIC_TOPIC_CONFIG", cfg["segment.bytes"]
        assert cfg["segment.bytes"]["value"] == "1073741824", cfg["segment.bytes"]

    check_configs()

    admin.ok("create-partitions", topic=topic, partitions=5)
    parts = partitions_of(admin.ok("list-topics"))
    assert sorted(parts, key=int) == ["0", "1", "2", "3", "4"], parts

    # A record in a new partition, then everything must survive kill -9.
    ts = recent_ms()
    rec = [{"k": b"key", "v": b"in-partition-4", "h": [], "ts": ts, "p": 4}]
    produced = run_client(venv_latest, DRIVER, "produce",
                          ["--bootstrap", broker.bootstrap, "--topic", topic, "--records",
                           write_records(tmp_path / "one.jsonl", rec)], tmp_path)
    assert produced["results"] == [{"p": 4, "o": 0, "ts": ts, "ts_type": 1}], \
        produced["results"]

    broker.restart()

    parts = partitions_of(admin.ok("list-topics"))
    assert sorted(parts, key=int) == ["0", "1", "2", "3", "4"], "after restart: %s" % parts
    check_configs()
    consumed = run_client(venv_latest, DRIVER, "consume",
                          ["--bootstrap", broker.bootstrap, "--topic", topic,
                           "--partitions", 5], tmp_path)
    assert [(r["p"], r["o"], r["k"], r["v"]) for r in consumed["records"]] == \
        [(4, 0, b"key".hex(), b"in-partition-4".hex())], consumed["records"]

    admin.ok("delete-topic", topic=topic)
    wait_until(lambda: topic not in admin.ok("list-topics")["topics"], 20,
               "deleted topic to leave the metadata")

    broker.restart()
    assert topic not in admin.ok("list-topics")["topics"], "deleted topic back after restart"
    # The name is free again.
    admin.ok("create-topic", topic=topic, partitions=1)
    parts = partitions_of(admin.ok("list-topics"))
    assert list(parts) == ["0"], parts


def test_admin_errors(venv_latest, broker_factory, tmp_path):
    broker = broker_factory("--auto-create-topics-enable", "false")
    admin = Admin(venv_latest, broker, tmp_path)
    admin.ok("create-topic", topic="adm-err", partitions=3)

    def err(op, **kw):
        e = admin(op, **kw)["error"]
        return e and e["code"]

    assert err("create-topic", topic="adm-err", partitions=3) == "TOPIC_ALREADY_EXISTS"
    assert err("delete-topic", topic="adm-missing") == "UNKNOWN_TOPIC_OR_PART"
    assert err("create-partitions", topic="adm-err", partitions=2) == "INVALID_PARTITIONS"
    assert err("create-partitions", topic="adm-missing", partitions=2) == \
        "UNKNOWN_TOPIC_OR_PART"
    assert err("create-topic", topic="adm-bad-cfg", partitions=1,
               config=["retention.ms=not-a-number"]) == "INVALID_CONFIG"
    assert err("create-topic", topic="bad/name", partitions=1) == "TOPIC_EXCEPTION"
    assert err("describe-config", topic="adm-missing") == "UNKNOWN_TOPIC_OR_PART"
    md = admin.ok("list-topics")
    assert "adm-bad-cfg" not in md["topics"] and "bad/name" not in md["topics"], \
        sorted(md["topics"])
    assert sorted(md["topics"]["adm-err"]["partitions"], key=int) == ["0", "1", "2"]
