"""kafka-python, latest and 2.0.2 (same driver script, two venvs): produce with acks and
compression variants, kill -9, consume with assign() + seek_to_beginning(), compare byte for byte;
ListOffsets through beginning/end_offsets and offsets_for_times."""

import zlib

import pytest

from helpers import (assert_codec, check_acks, check_from_offset, check_roundtrip,
                     expected_for_time, make_records, query_times, recent_ms, run_client,
                     stored_codecs, timed_records, write_records)

DRIVER = "kafka_python_client.py"
CLIENTS = {"kafka-python-latest": "venv_latest", "kafka-python-2.0.2": "venv_kp202"}
# Client defaults otherwise: kafka-python 3.x is then idempotent with acks=all (InitProducerId).
VARIANTS = {
    "acks_all": {"acks": "all", "compression": "none"},
    "acks_1": {"acks": "1", "compression": "none"},
    "gzip_acks_all": {"acks": "all", "compression": "gzip"},
    "acks_all_no_idempotence": {"acks": "all", "compression": "none", "idempotence": "off"},
}
CASES = [(c, v) for c in CLIENTS for v in VARIANTS
         # 2.0.2 has no idempotent producer: that variant would repeat acks_all.
         if not (c == "kafka-python-2.0.2" and "idempotence" in VARIANTS[v])]
N = 2000
PARTITIONS = 3


def client_python(request, client):
    return request.getfixturevalue(CLIENTS[client])


def check_version(out, client):
    if client == "kafka-python-2.0.2":
        assert out["version"] == "2.0.2", out["version"]
    else:
        assert out["version"] != "2.0.2", out["version"]


@pytest.mark.parametrize("client,variant", CASES, ids=["%s-%s" % c for c in CASES])
def test_roundtrip_survives_kill9(client, variant, request, broker_factory, tmp_path):
    py = client_python(request, client)
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    topic = "kp-%s" % variant.replace("_", "-")
    sent = make_records(N, seed=zlib.crc32((client + variant).encode()))
    recfile = write_records(tmp_path / "records.jsonl", sent)

    produced = run_client(py, DRIVER, "produce",
                          ["--bootstrap", broker.bootstrap, "--topic", topic, "--records", recfile,
                           "--acks", VARIANTS[variant]["acks"],
                           "--compression", VARIANTS[variant]["compression"],
                           "--idempotence", VARIANTS[variant].get("idempotence", "default")],
                          tmp_path)
    check_version(produced, client)
    check_acks(sent, produced)
    codec = VARIANTS[variant]["compression"]
    assert_codec(stored_codecs(broker.data_dir, topic), codec)

    broker.restart()

    consumed = run_client(py, DRIVER, "consume",
                          ["--bootstrap", broker.bootstrap, "--topic", topic,
                           "--partitions", PARTITIONS], tmp_path)
    assert consumed["partitions"] == list(range(PARTITIONS)), consumed["partitions"]
    check_roundtrip(sent, produced, consumed, PARTITIONS)

    start = 101  # inside a batch: batches hold many records each with these settings
    partial = run_client(py, DRIVER, "consume",
                         ["--bootstrap", broker.bootstrap, "--topic", topic,
                          "--partitions", PARTITIONS, "--start-offset", start], tmp_path)
    check_from_offset(consumed, partial, start)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_list_offsets(client, request, broker_factory, tmp_path):
    py = client_python(request, client)
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    topic = "kp-offsets"
    per_partition = 50
    base = recent_ms()
    sent = timed_records(base, per_partition, PARTITIONS)
    # Idempotence (kafka-python 3.x's default) is covered by the round-trip tests, not here.
    idem = [] if client == "kafka-python-2.0.2" else ["--idempotence", "off"]
    produced = run_client(py, DRIVER, "produce",
                          ["--bootstrap", broker.bootstrap, "--topic", topic, "--records",
                           write_records(tmp_path / "timed.jsonl", sent)] + idem, tmp_path)
    check_version(produced, client)
    by_pos = check_acks(sent, produced)
    assert sorted(by_pos) == [(p, j) for p in range(PARTITIONS) for j in range(per_partition)]

    times = query_times(base, per_partition)
    for phase in ("before kill -9", "after restart"):
        if phase == "after restart":
            broker.restart()
        out = run_client(py, DRIVER, "offsets",
                         ["--bootstrap", broker.bootstrap, "--topic", topic,
                          "--partitions", PARTITIONS, "--times", ",".join(map(str, times))],
                         tmp_path)
        for p in range(PARTITIONS):
            assert out["beginning"][str(p)] == 0, (phase, out["beginning"])
            assert out["end"][str(p)] == per_partition, (phase, out["end"])
        for t in times:
            got = out["for_times"][str(t)]
            want = {str(p): expected_for_time(base, per_partition, p, t)
                    for p in range(PARTITIONS)}
            assert got == want, "%s: offsets_for_times(%d) = %s, want %s" % (phase, t, got, want)
