"""TLS listeners with real clients: one broker with three listeners (PLAINTEXT, SSL without
client certificates, MTLS requiring them), certificates made at test time with the openssl CLI
(installed by scripts/test-deps.sh): an RSA broker key in PKCS#1 form, EC client keys.

- kcat over SSL and over MTLS (with a client certificate): produce, consume, content checked;
  kcat on MTLS without a certificate gets nothing through;
- confluent-kafka over SSL and MTLS: produce with acks=all, consume from the beginning, content
  and offsets checked; Metadata over each listener advertises that listener's port;
- kafka-python (latest) over SSL: produce and consume, content checked;
- the broker logs the MTLS client's principal as Kafka prints it (User:CN=...,O=...)."""

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from conftest import Broker, free_port
from helpers import wait_until

N = 200


def openssl(workdir, *args):
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("openssl not installed: run scripts/test-deps.sh", pytrace=False)
    p = subprocess.run([exe] + list(args), cwd=workdir, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, "openssl %s:\n%s" % (" ".join(args), p.stderr.decode()[-2000:])


def issue(d, ca, name, subject, ext, key_args):
    """name.key (key_args) and name.pem signed by ca.pem/ca.key with extensions ext."""
    openssl(d, *key_args, "-out", "%s.key" % name)
    openssl(d, "req", "-new", "-key", "%s.key" % name, "-subj", subject, "-out", "%s.csr" % name)
    (d / ("%s.ext" % name)).write_text(ext)
    openssl(d, "x509", "-req", "-in", "%s.csr" % name, "-CA", "%s.pem" % ca, "-CAkey",
            "%s.key" % ca, "-CAcreateserial", "-days", "2", "-extfile", "%s.ext" % name,
            "-out", "%s.pem" % name)


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    for ca in ("ca", "other-ca"):
        openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "%s.key" % ca, "-out", "%s.pem" % ca, "-days", "2",
                "-subj", "/CN=samsa-compat-%s" % ca,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    issue(d, "ca", "broker", "/CN=samsa-broker",
          leaf + "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
          ["genrsa", "-traditional"])
    client_ext = leaf + "extendedKeyUsage=clientAuth\n"
    ec = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    issue(d, "ca", "client", "/O=samsa/OU=compat/CN=compat-client", client_ext, ec)
    issue(d, "other-ca", "stranger", "/CN=stranger", client_ext, ec)
    assert "BEGIN RSA PRIVATE KEY" in (d / "broker.key").read_text(), "PKCS#1 broker key"
    return d


class TlsBroker(Broker):
    """A broker whose Kafka listeners are PLAINTEXT (self.port), SSL and MTLS."""

    def __init__(self, binary, workdir, pki):
        super().__init__(binary, workdir)
        self.pki = pki
        taken = {self.port, self.metrics_port}
        self.ports = {}
        for name in ("SSL", "MTLS"):
            p = free_port()
            while p in taken:
                p = free_port()
            taken.add(p)
            self.ports[name] = p

    def addr(self, listener):
        return "127.0.0.1:%d" % self.ports[listener]

    def command(self):
        listeners = "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d,MTLS://127.0.0.1:%d" % (
            self.port, self.ports["SSL"], self.ports["MTLS"])
        return [self.binary,
                "--listeners", listeners,
                "--listener-security-protocol-map", "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL",
                "--ssl-certificate-location", str(self.pki / "broker.pem"),
                "--ssl-key-location", str(self.pki / "broker.key"),
                "--ssl-truststore-location", str(self.pki / "ca.pem"),
                "--listener-ssl-client-auth", "MTLS:required",
                "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
                "--data-dir", str(self.data_dir),
                "--node-id", str(self.node_id),
                "--log", "info,samsa_broker::server::listeners=debug"]


@pytest.fixture
def tls_broker(broker_bin, tmp_path, pki):
    b = TlsBroker(broker_bin, tmp_path / "broker0", pki)
    b.start()
    yield b
    crashed = b.crashed()
    b.stop()
    assert crashed is None, "broker exited by itself (%s)\n%s" % (crashed, b.log_tail())
    panics = [line for line in b.log_text().splitlines() if "panicked at" in line]
    assert not panics, "broker panicked:\n%s" % "\n".join(panics[:5])


def messages(tag):
    return ["%s-%04d-%s" % (tag, i, "x" * (i % 37)) for i in range(N)]


def kcat(args, input_bytes=None, timeout=120):
    exe = shutil.which("kcat")
    if exe is None:
        pytest.fail("kcat not installed: run scripts/test-deps.sh", pytrace=False)
    return subprocess.run([exe] + args, input=input_bytes, capture_output=True, timeout=timeout,
                          stdin=None if input_bytes is not None else subprocess.DEVNULL)


def kcat_ssl(pki, cert=None):
    args = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=%s" % (pki / "ca.pem"),
            "-X", "ssl.endpoint.identification.algorithm=https"]
    if cert:
        args += ["-X", "ssl.certificate.location=%s" % (pki / ("%s.pem" % cert)),
                 "-X", "ssl.key.location=%s" % (pki / ("%s.key" % cert))]
    return args


@pytest.mark.parametrize("listener,cert", [("SSL", None), ("MTLS", "client")])
def test_kcat_over_tls(tls_broker, pki, listener, cert):
    topic = "kcat-%s" % listener.lower()
    sent = messages(topic)
    tls = kcat_ssl(pki, cert)
    p = kcat(["-P", "-b", tls_broker.addr(listener), "-t", topic, "-X", "acks=all"] + tls,
             ("\n".join(sent) + "\n").encode())
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and "Delivery failed" not in err, err[-3000:]
    c = kcat(["-C", "-b", tls_broker.addr(listener), "-t", topic, "-e", "-o", "beginning",
              "-f", "%o:%s\n"] + tls)
    assert c.returncode == 0, c.stderr.decode(errors="replace")[-3000:]
    got = c.stdout.decode().splitlines()
    assert got == ["%d:%s" % (i, m) for i, m in enumerate(sent)]


def test_kcat_without_a_certificate_is_refused_on_mtls(tls_broker, pki):
    for cert in (None, "stranger"):
        md = kcat(["-L", "-J", "-b", tls_broker.addr("MTLS"), "-m", "5"] + kcat_ssl(pki, cert),
                  timeout=60)
        assert md.returncode != 0, "metadata without a trusted certificate: %s" % md.stdout
    text = tls_broker.log_text()
    for reason in ("no_client_certificate", "certificate_unknown"):
        line = 'TLS handshake failed listener="MTLS"'
        assert any(line in t and 'reason="%s"' % reason in t for t in text.splitlines()), \
            tls_broker.log_tail()


def confluent_ssl(pki, cert=None):
    cfg = {"security.protocol": "SSL", "ssl.ca.location": str(pki / "ca.pem"),
           "ssl.endpoint.identification.algorithm": "https"}
    if cert:
        cfg["ssl.certificate.location"] = str(pki / ("%s.pem" % cert))
        cfg["ssl.key.location"] = str(pki / ("%s.key" % cert))
    return cfg


@pytest.mark.parametrize("listener,cert", [("SSL", None), ("MTLS", "client")])
def test_confluent_kafka_over_tls(tls_broker, pki, listener, cert):
    topic = "confluent-%s" % listener.lower()
    sent = [m.encode() for m in messages(topic)]
    tls = confluent_ssl(pki, cert)
    prod = Producer(dict(tls, **{"bootstrap.servers": tls_broker.addr(listener), "acks": "all"}))
    acked, errors = [], []

    def report(err, msg):
        (errors if err else acked).append(err or (msg.offset(), msg.value()))

    for i, v in enumerate(sent):
        prod.produce(topic, value=v, key=b"k%d" % i, partition=0, on_delivery=report)
        prod.poll(0)
    assert prod.flush(60) == 0
    assert not errors, errors[:5]
    assert sorted(acked) == list(enumerate(sent))
    md = prod.list_topics(topic, timeout=30)
    ports = sorted(b.port for b in md.brokers.values())
    assert ports == [tls_broker.ports[listener]], "advertised port of %s: %s" % (listener, ports)

    cons = Consumer(dict(tls, **{"bootstrap.servers": tls_broker.addr(listener),
                                 "group.id": "g-%s" % uuid.uuid4(), "enable.auto.commit": False}))
    cons.assign([TopicPartition(topic, 0, 0)])
    got = []

    def more():
        m = cons.poll(1.0)
        if m is not None:
            assert m.error() is None, m.error()
            got.append((m.offset(), m.key(), m.value()))
        return len(got) >= N

    wait_until(more, 60, "%d records over %s" % (N, listener), interval=0)
    cons.close()
    assert got == [(i, b"k%d" % i, v) for i, v in enumerate(sent)]
    if cert:
        principal = "User:CN=compat-client,OU=compat,O=samsa"
        assert principal in tls_broker.log_text(), tls_broker.log_tail()


def test_kafka_python_over_ssl(tls_broker, pki):
    topic = "kafka-python-ssl"
    sent = [m.encode() for m in messages(topic)]
    tls = dict(security_protocol="SSL", ssl_cafile=str(pki / "ca.pem"), ssl_check_hostname=True)
    prod = KafkaProducer(bootstrap_servers=tls_broker.addr("SSL"), acks="all", **tls)
    futures = [prod.send(topic, value=v, partition=0) for v in sent]
    prod.flush(timeout=60)
    offsets = [f.get(timeout=30).offset for f in futures]
    prod.close(timeout=10)
    assert offsets == list(range(N))
    cons = KafkaConsumer(bootstrap_servers=tls_broker.addr("SSL"), enable_auto_commit=False,
                         consumer_timeout_ms=2000, **tls)
    tp = KpTopicPartition(topic, 0)
    cons.assign([tp])
    cons.seek_to_beginning(tp)
    got = []

    def more():
        for records in cons.poll(timeout_ms=1000).values():
            got.extend((r.offset, r.value) for r in records)
        return len(got) >= N

    wait_until(more, 60, "%d records over SSL with kafka-python" % N, interval=0)
    cons.close()
    assert got == list(enumerate(sent))
