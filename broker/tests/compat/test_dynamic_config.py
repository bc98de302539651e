"""Cluster-wide dynamic broker defaults with real clients: IncrementalAlterConfigs on the
BROKER resource "" lowers message.max.bytes and sets log.retention.ms; confluent-kafka's
describe_configs shows them as DYNAMIC_DEFAULT_BROKER_CONFIG on the broker and on a topic without
an override; a confluent-kafka produce above the new limit fails at once, the values survive a
kill -9, and a DELETE brings back the flag's value.

confluent-kafka's incremental_alter_configs is tried first on ConfigResource(BROKER, ""); its
librdkafka (2.16) refuses an empty resource name before sending anything (FINDINGS.md), so the
change then goes through kafka-python 3.x's alter_configs, which sends the same request."""

from helpers import check_acks, recent_ms, run_client, write_records

DRIVER = "confluent_client.py"
KP_DRIVER = "kafka_python_client.py"
DYNAMIC = "DYNAMIC_DEFAULT_BROKER_CONFIG"


def alter_default(venv, broker, tmp_path, *args):
    """Alters the cluster-wide default: confluent-kafka if it sends the request, else
    kafka-python. Returns the error (None when applied)."""
    res = admin(venv, broker, tmp_path, "--op", "alter-broker-config", *args)
    if res["error"] is None or res["error"]["code"] != "ValueError":
        return res["error"]
    res = run_client(venv, KP_DRIVER, "alter-broker-config",
                     ["--bootstrap", broker.bootstrap] + list(args), tmp_path)
    return None if res["result"] == "OK" else res["result"]


def admin(venv, broker, tmp_path, *args):
    return run_client(venv, DRIVER, "admin", ["--bootstrap", broker.bootstrap] + list(args),
                      tmp_path)


def produce(venv, broker, tmp_path, topic, name, size):
    sent = [{"k": b"k", "v": b"x" * size, "h": [], "ts": recent_ms(), "p": 0}]
    return sent, run_client(venv, DRIVER, "produce",
                            ["--bootstrap", broker.bootstrap, "--topic", topic,
                             "--records", write_records(tmp_path / (name + ".jsonl"), sent)],
                            tmp_path)


def test_broker_default_set_described_and_applied(venv_latest, broker_factory, tmp_path):
    broker = broker_factory()
    topic = "dyn-plain"
    created = admin(venv_latest, broker, tmp_path, "--op", "create-topic", "--topic", topic)
    assert created["error"] is None, created
    sent, produced = produce(venv_latest, broker, tmp_path, topic, "before", 3000)
    check_acks(sent, produced)

    altered = alter_default(venv_latest, broker, tmp_path,
                            "--config", "message.max.bytes=2000",
                            "--config", "log.retention.ms=600000")
    assert altered is None, altered

    def check_described():
        described = admin(venv_latest, broker, tmp_path, "--op", "describe-broker-config",
                          "--broker", "1")
        assert described["error"] is None, described
        c = described["configs"]
        assert c["message.max.bytes"]["value"] == "2000", c["message.max.bytes"]
        assert c["message.max.bytes"]["source"] == DYNAMIC, c["message.max.bytes"]
        assert c["message.max.bytes"]["is_read_only"] is False
        assert c["log.retention.ms"]["value"] == "600000", c["log.retention.ms"]
        assert c["log.retention.ms"]["source"] == DYNAMIC
        assert c["num.partitions"]["is_read_only"] is True
        assert c["num.partitions"]["source"] == "STATIC_BROKER_CONFIG"
        t = admin(venv_latest, broker, tmp_path, "--op", "describe-config", "--topic", topic)
        assert t["error"] is None, t
        assert t["configs"]["max.message.bytes"]["value"] == "2000", t["configs"]
        assert t["configs"]["max.message.bytes"]["source"] == DYNAMIC
        assert t["configs"]["retention.ms"]["value"] == "600000"

    check_described()
    _, refused = produce(venv_latest, broker, tmp_path, topic, "too-big", 3000)
    assert refused["results"][0].get("code") == "MSG_SIZE_TOO_LARGE", refused["results"]
    sent, produced = produce(venv_latest, broker, tmp_path, topic, "small", 100)
    check_acks(sent, produced)

    # A read-only key is refused, naming it.
    bad = alter_default(venv_latest, broker, tmp_path, "--config", "num.partitions=3")
    assert bad is not None and "num.partitions" in str(bad), bad
    assert "INVALID_REQUEST" in str(bad) or "InvalidRequest" in str(bad), bad
    # A per-broker value (confluent-kafka sends the broker id as the name) comes before the
    # cluster-wide default on that broker; a broker that is not this one is refused.
    per_broker = admin(venv_latest, broker, tmp_path, "--op", "alter-broker-config",
                       "--broker", "1", "--config", "follower.replication.throttled.rate=5000000")
    assert per_broker["error"] is None, per_broker

    def check_per_broker():
        described = admin(venv_latest, broker, tmp_path, "--op", "describe-broker-config",
                          "--broker", "1")
        rate = described["configs"]["follower.replication.throttled.rate"]
        assert rate["value"] == "5000000", rate
        assert rate["source"] == "DYNAMIC_BROKER_CONFIG", rate
        leader = described["configs"]["leader.replication.throttled.rate"]
        assert leader["value"] == "9223372036854775807", leader
        assert leader["source"] == "DEFAULT_CONFIG", leader

    check_per_broker()

    broker.restart()  # kill -9, then start on the same ports and data dir
    check_described()
    check_per_broker()
    _, refused = produce(venv_latest, broker, tmp_path, topic, "too-big-2", 3000)
    assert refused["results"][0].get("code") == "MSG_SIZE_TOO_LARGE", refused["results"]

    deleted = alter_default(venv_latest, broker, tmp_path, "--delete", "message.max.bytes")
    assert deleted is None, deleted
    described = admin(venv_latest, broker, tmp_path, "--op", "describe-broker-config",
                      "--broker", "1")
    assert described["configs"]["message.max.bytes"]["value"] == "1048588"
    assert described["configs"]["message.max.bytes"]["source"] == "STATIC_BROKER_CONFIG"
    sent, produced = produce(venv_latest, broker, tmp_path, topic, "after", 3000)
    check_acks(sent, produced)
