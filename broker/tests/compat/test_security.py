"""Security with real clients: SCRAM-SHA-512/256 and PLAIN over SASL_SSL and SASL_PLAINTEXT,
mutual TLS with the client certificate's subject as principal, and ACLs, managed with Apache
Kafka's own kafka-configs and kafka-acls (4.1.1) and used by confluent-kafka, kafka-python,
kcat and the Java client.

One broker per test with four listeners: PLAINTEXT (anonymous, no rights), SASL_SSL and
SASL_PLAINTEXT (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and SSL with client certificates required;
the authorizer on, `User:CN=admin` (a client certificate) the only super user, no topic
auto-creation. Certificates are made per test (certs.py).
"""

import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from certs import CertAuthority
from conftest import free_port, http_get
from helpers import wait_until
from kafka_tools import missing as tools_missing
from kafka_tools import run_tool
from test_java import JavaClient, java_cmd, read_consumed  # noqa: F401 (fixture)

PASSWORD = "alice-secret"


class Secure:
    """The broker, its listeners and the client settings for each principal."""

    def __init__(self, broker_factory, tmp_path):
        pki = tmp_path / "pki"
        self.ca = CertAuthority(pki, "samsa-test-ca")
        self.server = self.ca.issue("broker", sans=["localhost", "127.0.0.1"])
        self.admin = self.ca.issue("admin", client=True)
        self.bob = self.ca.issue("bob", client=True)
        self.expired = self.ca.issue("carol", client=True, expired=True)
        self.foreign = CertAuthority(tmp_path / "foreign", "foreign-ca").issue(
            "admin", client=True, file_name="foreign-admin")
        self.sasl_ssl_port, self.ssl_port, self.sasl_port = free_port(), free_port(), free_port()
        self.broker = broker_factory(
            "--listeners",
            "PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:%d,SSL://127.0.0.1:%d,"
            "SASL_PLAINTEXT://127.0.0.1:%d" % (self.sasl_ssl_port, self.ssl_port, self.sasl_port),
            "--ssl-certificate-location", self.server.cert,
            "--ssl-key-location", self.server.key,
            "--ssl-truststore-location", self.ca.cert,
            "--listener-ssl-client-auth", "SSL:required",
            "--sasl-enabled-mechanisms", "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "--authorizer-enable", "true",
            "--super-users", "User:CN=admin",
            "--auto-create-topics-enable", "false",
            "--num-partitions", "3")
        self.plaintext = self.broker.bootstrap
        self.sasl_ssl = "127.0.0.1:%d" % self.sasl_ssl_port
        self.ssl = "127.0.0.1:%d" % self.ssl_port
        self.sasl_plaintext = "127.0.0.1:%d" % self.sasl_port
        self.workdir = tmp_path

    # --- librdkafka (confluent-kafka, kcat) settings -------------------------------------------
    def scram(self, user="alice", password=PASSWORD, mechanism="SCRAM-SHA-512",
              tls=True):
        conf = {"bootstrap.servers": self.sasl_ssl if tls else self.sasl_plaintext,
                "security.protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
                "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password}
        if tls:
            conf["ssl.ca.location"] = str(self.ca.cert)
        return conf

    def mtls(self, who):
        return {"bootstrap.servers": self.ssl, "security.protocol": "SSL",
                "ssl.ca.location": str(self.ca.cert),
                "ssl.certificate.location": str(who.cert), "ssl.key.location": str(who.key)}

    # --- Java (kafka-clients, Kafka's tools) settings ------------------------------------------
    def java_mtls(self, who):
        return {"security.protocol": "SSL", "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.ca.cert), "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(who.chain_and_key())}

    def java_scram(self, user="alice", password=PASSWORD, mechanism="SCRAM-SHA-512"):
        return {"security.protocol": "SASL_SSL", "sasl.mechanism": mechanism,
                "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule '
                                    'required username="%s" password="%s";' % (user, password),
                "ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.ca.cert)}

    def admin_properties(self):
        path = self.workdir / "admin.properties"
        path.write_text("".join("%s=%s\n" % kv for kv in self.java_mtls(self.admin).items()))
        return path

    def tool(self, tool, *args):
        """Runs one of Kafka's tools as the admin (mTLS), failing the test on a non-zero exit."""
        if tools_missing():
            pytest.fail(tools_missing(), pytrace=False)
        r = run_tool(tool, self.ssl, ["--command-config", self.admin_properties()] + list(args))
        assert r.rc == 0, str(r)
        return r

    def create_topics(self, *names):
        admin = AdminClient(self.mtls(self.admin))
        futures = admin.create_topics([NewTopic(n, 3, 1) for n in names])
        for n, f in futures.items():
            f.result(timeout=30)


@pytest.fixture
def secure(broker_factory, tmp_path):
    return Secure(broker_factory, tmp_path)


def produce(conf, topic, n, prefix="v", errors=None, timeout_ms=20000):
    """Sends n records with acks=all and idempotence; returns (acked, errors)."""
    errors = [] if errors is None else errors
    acked = []
    p = Producer(dict(conf, **{"acks": "all", "enable.idempotence": True,
                               "error_cb": lambda e: errors.append(e),
                               "message.timeout.ms": timeout_ms}))

    def done(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value().decode()))
        else:
            errors.append(err)

    for i in range(n):
        p.produce(topic, key=b"k%d" % (i % 10), value=("%s-%d" % (prefix, i)).encode(),
                  on_delivery=done)
        p.poll(0)
    p.flush(timeout_ms / 1000 + 10)
    return acked, errors


def consume_all(conf, topic, expected, group=None, timeout=30):
    """Reads `topic` from the beginning until `expected` records came; returns the values, or
    the first error the consumer reported."""
    c = Consumer(dict(conf, **{"group.id": group or "g-assign", "enable.auto.commit": False,
                               "auto.offset.reset": "earliest"}))
    try:
        if group:
            c.subscribe([topic])
        else:
            c.assign([TopicPartition(topic, p, 0) for p in range(3)])
        values = []
        deadline = time.monotonic() + timeout
        while len(values) < expected and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return m.error()
            values.append(m.value().decode())
        if group and values:
            c.commit(asynchronous=False)
        return values
    finally:
        c.close()


def test_scram_users_and_acls_with_kafka_tools_then_every_client(secure, java_cmd, tmp_path):  # noqa: F811
    s = secure
    # Users and ACLs with Kafka's own tools, as the mTLS super user.
    s.tool("kafka-configs", "--alter", "--entity-type", "users",
           "--entity-name", "alice", "--add-config",
           "SCRAM-SHA-512=[iterations=8192,password=%s],SCRAM-SHA-256=[password=%s]"
           % (PASSWORD, PASSWORD))
    described = s.tool("kafka-configs", "--describe", "--entity-type", "users",
                       "--entity-name", "alice").stdout
    assert "SCRAM-SHA-512=iterations=8192" in described, described
    assert "SCRAM-SHA-256=iterations=4096" in described, described
    for principal in ("User:alice", "User:CN=bob"):
        s.tool("kafka-acls", "--add", "--allow-principal", principal, "--operation", "Read",
               "--operation", "Write", "--operation", "Describe", "--topic", "logs-",
               "--resource-pattern-type", "prefixed")
        s.tool("kafka-acls", "--add", "--allow-principal", principal, "--operation", "Read",
               "--group", "g-", "--resource-pattern-type", "prefixed")
    listed = s.tool("kafka-acls", "--list", "--topic", "logs-",
                    "--resource-pattern-type", "prefixed").stdout
    for needle in ("principal=User:alice", "principal=User:CN=bob", "operation=WRITE",
                   "operation=READ", "patternType=PREFIXED"):
        assert needle in listed, listed
    s.create_topics("logs-a", "logs-java")

    # confluent-kafka: SCRAM-SHA-512 over SASL_SSL produces, SCRAM-SHA-256 consumes in a group.
    acked, errors = produce(s.scram(), "logs-a", 300, prefix="ck")
    assert len(acked) == 300 and not errors, errors[:3]
    got = consume_all(s.scram(mechanism="SCRAM-SHA-256"), "logs-a", 300, group="g-ck")
    assert sorted(got) == sorted(v for _, _, v in acked)

    # PLAIN over SASL_PLAINTEXT, checked against the stored SCRAM credential.
    acked_plain, errors = produce(s.scram(mechanism="PLAIN", tls=False), "logs-a", 10,
                                  prefix="plain")
    assert len(acked_plain) == 10 and not errors, errors[:3]

    # kcat over SASL_SSL.
    kcat_auth = ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
                 "-X", "sasl.username=alice", "-X", "sasl.password=%s" % PASSWORD,
                 "-X", "ssl.ca.location=%s" % s.ca.cert]
    lines = "".join("kc-%d\n" % i for i in range(50))
    r = subprocess.run(["kcat", "-b", s.sasl_ssl, "-t", "logs-a", "-P", "-X", "acks=all"]
                       + kcat_auth, input=lines, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["kcat", "-b", s.sasl_ssl, "-t", "logs-a", "-C", "-e", "-o", "beginning",
                        "-q"] + kcat_auth, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    values = r.stdout.split()
    assert len(values) == 360, len(values)
    assert sorted(v for v in values if v.startswith("kc-")) == sorted(lines.split())

    # kafka-python over SASL_SSL (SCRAM-SHA-512) and over mTLS.
    from kafka import KafkaConsumer, KafkaProducer
    kp_scram = dict(bootstrap_servers=s.sasl_ssl, security_protocol="SASL_SSL",
                    sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice",
                    sasl_plain_password=PASSWORD, ssl_cafile=str(s.ca.cert))
    kp_mtls = dict(bootstrap_servers=s.ssl, security_protocol="SSL", ssl_cafile=str(s.ca.cert),
                   ssl_certfile=str(s.bob.cert), ssl_keyfile=str(s.bob.key))
    for name, conf in (("kp-scram", kp_scram), ("kp-mtls", kp_mtls)):
        p = KafkaProducer(acks="all", **conf)
        for i in range(20):
            p.send("logs-a", ("%s-%d" % (name, i)).encode()).get(timeout=30)
        p.close()
    c = KafkaConsumer("logs-a", group_id="g-kp", auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=10000, **kp_mtls)
    kp_values = [m.value.decode() for m in c]
    c.close()
    assert len(kp_values) == 400, len(kp_values)
    assert {v for v in kp_values if v.startswith("kp-")} == {
        "%s-%d" % (n, i) for n in ("kp-scram", "kp-mtls") for i in range(20)}

    # confluent-kafka over mTLS as User:CN=bob.
    acked_bob, errors = produce(s.mtls(s.bob), "logs-a", 30, prefix="bob")
    assert len(acked_bob) == 30 and not errors, errors[:3]

    # The Java client: SCRAM-SHA-512 over SASL_SSL produces, a group consumer over mTLS reads.
    acks_file = tmp_path / "java-acks.txt"
    producer = JavaClient(java_cmd, tmp_path, "producer",
                          ["produce", s.sasl_ssl, "logs-java", 200, 0, acks_file]
                          + ["%s=%s" % kv for kv in s.java_scram().items()])
    result = producer.finish(120)
    assert result.get("acked") == 200, (result, producer.err.read_text()[-2000:])
    out, stop = tmp_path / "java-consumed.txt", tmp_path / "java-stop"
    consumer = JavaClient(java_cmd, tmp_path, "consumer",
                          ["consume", s.ssl, "logs-java", "g-java", out, stop, 60]
                          + ["%s=%s" % kv for kv in s.java_mtls(s.bob).items()])
    wait_until(lambda: len(read_consumed([out])) >= 200, 90,
               "the Java consumer to read 200 records")
    stop.touch()
    consumer.finish(60)
    assert sorted(r[4] for r in read_consumed([out])) == list(range(200))

    # Credentials and ACLs survive a kill -9.
    s.broker.restart()
    again = consume_all(s.scram(), "logs-a", 400)
    assert isinstance(again, list) and len(again) == 400, again
    relisted = s.tool("kafka-acls", "--list", "--topic", "logs-",
                      "--resource-pattern-type", "prefixed").stdout
    assert relisted.count("principal=") == listed.count("principal="), relisted


def test_refusals_name_the_kafka_error(secure):
    s = secure
    s.tool("kafka-configs", "--alter", "--entity-type", "users",
           "--entity-name", "alice", "--add-config", "SCRAM-SHA-512=[password=%s]" % PASSWORD)
    # alice may write `orders` but not read it; she may read `logs-` topics in `g-` groups.
    s.tool("kafka-acls", "--add", "--allow-principal", "User:alice", "--operation", "Write",
           "--topic", "orders")
    s.tool("kafka-acls", "--add", "--allow-principal", "User:alice", "--operation", "Read",
           "--topic", "logs-", "--resource-pattern-type", "prefixed")
    s.tool("kafka-acls", "--add", "--allow-principal", "User:alice", "--operation", "Read",
           "--group", "g-", "--resource-pattern-type", "prefixed")
    s.create_topics("orders", "logs-b", "logsx")
    seeded, errors = produce(s.mtls(s.admin), "logs-b", 5)
    assert len(seeded) == 5 and not errors
    seeded, errors = produce(s.mtls(s.admin), "logsx", 5)
    assert len(seeded) == 5 and not errors

    # Wrong password and unknown user: SASL authentication failed, and the same message.
    for user, password in (("alice", "wrong"), ("mallory", PASSWORD)):
        errors = []
        acked, errors = produce(s.scram(user=user, password=password), "orders", 1,
                                errors=errors, timeout_ms=3000)
        assert not acked
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        assert auth, errors[:3]
        assert "Authentication failed" in auth[0].str(), auth[0].str()
    r = subprocess.run(["kcat", "-b", s.sasl_ssl, "-L", "-m", "10", "-X",
                        "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
                        "-X", "sasl.username=alice", "-X", "sasl.password=wrong",
                        "-X", "ssl.ca.location=%s" % s.ca.cert],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Authentication failed" in r.stderr, r.stderr[-2000:]

    # Expired and foreign client certificates never get a session.
    for who in (s.expired, s.foreign):
        errors = []
        acked, errors = produce(s.mtls(who), "orders", 1, errors=errors, timeout_ms=3000)
        assert not acked
        assert any(e.code() in (KafkaError._SSL, KafkaError._TRANSPORT,
                                KafkaError._ALL_BROKERS_DOWN) for e in errors), errors[:3]

    # Write but no read: produce works, consume gets TOPIC_AUTHORIZATION_FAILED.
    acked, errors = produce(s.scram(), "orders", 10)
    assert len(acked) == 10 and not errors, errors[:3]
    got = consume_all(s.scram(), "orders", 10)
    assert isinstance(got, KafkaError) and got.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, got
    # Prefixed ACLs: logs-b readable, logsx is not.
    got = consume_all(s.scram(), "logs-b", 5, group="g-1")
    assert sorted(got) == sorted("v-%d" % i for i in range(5)), got
    # logsx is outside the prefix: alice may not even describe it.
    md = AdminClient(s.scram()).list_topics(topic="logsx", timeout=10)
    assert md.topics["logsx"].error is not None
    assert md.topics["logsx"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, md.topics
    # A group outside the prefix: GROUP_AUTHORIZATION_FAILED.
    got = consume_all(s.scram(), "logs-b", 5, group="other")
    assert isinstance(got, KafkaError) and got.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, got
    # Anonymous on PLAINTEXT has no rights at all; listing topics shows none of them.
    acked, errors = produce({"bootstrap.servers": s.plaintext}, "orders", 1, timeout_ms=3000)
    assert not acked and any(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), \
        errors[:3]
    topics = AdminClient({"bootstrap.servers": s.plaintext}).list_topics(timeout=10).topics
    assert not set(topics) & {"orders", "logs-b", "logsx"}, topics
    # The denials are counted.
    metrics = http_get(s.broker.metrics_port, "/metrics")[1]
    assert 'samsa_sasl_authentications_total{mechanism="SCRAM-SHA-512",result="failure"}' \
        in metrics, metrics[-3000:]
    assert "samsa_authorization_denials_total" in metrics
    log = Path(s.broker.log_path).read_text()
    assert "authorization denied" in log and "SASL authentication failed" in log
