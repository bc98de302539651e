"""kcat (Debian's, librdkafka 2.0.2): 20,000 keyed messages in, kill -9, all of them back;
the same, smaller, with each compression codec."""

import json
import re
import shutil
import subprocess
from collections import defaultdict

import pytest

from helpers import assert_codec, stored_codecs

N = 20_000
KEYS = 100
PARTITIONS = 4
LINE = re.compile(r"^seq=(\d{6});key=(k\d+);x*$")


def kcat(args, timeout, input_bytes=None):
    exe = shutil.which("kcat")
    if exe is None:
        pytest.fail("kcat not installed: run scripts/test-deps.sh", pytrace=False)
    try:
        return subprocess.run([exe] + args, input=input_bytes, capture_output=True,
                              timeout=timeout, stdin=None if input_bytes is not None
                              else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail("kcat %s timed out after %ss; stderr:\n%s"
                    % (" ".join(args), timeout, (e.stderr or b"")[-3000:].decode(errors="replace")),
                    pytrace=False)


def produce_restart_consume(broker, topic, n, extra_produce_args=()):
    """kcat -P n keyed lines (acks=all), check metadata, kill -9 + restart, kcat -C everything
    and check it: each message once, key<->value, one partition per key, offsets 0..n-1 in
    send order per partition."""
    payload = "".join("k%d:seq=%06d;key=k%d;%s\n" % (i % KEYS, i, i % KEYS, "x" * (i % 50))
                      for i in range(n)).encode()
    p = kcat(["-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-X", "acks=all"]
             + list(extra_produce_args), 180, payload)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, "kcat -P exited %d:\n%s" % (p.returncode, err[-3000:])
    assert "Delivery failed" not in err, err[-3000:]

    md = kcat(["-L", "-J", "-b", broker.bootstrap, "-t", topic], 60)
    assert md.returncode == 0, md.stderr.decode(errors="replace")
    meta = json.loads(md.stdout)
    [t] = [t for t in meta["topics"] if t["topic"] == topic]
    assert sorted(x["partition"] for x in t["partitions"]) == list(range(PARTITIONS)), t
    assert all(x["leader"] == 1 for x in t["partitions"]), t

    broker.restart()

    c = kcat(["-C", "-b", broker.bootstrap, "-t", topic, "-e", "-o", "beginning",
              "-f", "%k:%p:%o:%s\n"], 180)
    err = c.stderr.decode(errors="replace")
    assert c.returncode == 0, "kcat -C exited %d:\n%s" % (c.returncode, err[-3000:])
    lines = c.stdout.decode().splitlines()

    seen = {}
    by_part = defaultdict(list)
    key_parts = defaultdict(set)
    for line in lines:
        k, part, off, value = line.split(":", 3)
        m = LINE.match(value)
        assert m, "unexpected value %r" % line
        seq = int(m.group(1))
        assert m.group(2) == k == "k%d" % (seq % KEYS), "key/value mismatch: %r" % line
        assert value == "seq=%06d;key=k%d;%s" % (seq, seq % KEYS, "x" * (seq % 50)), line
        assert seq not in seen, "seq %d consumed twice: %r and %r" % (seq, seen[seq], line)
        seen[seq] = line
        by_part[int(part)].append((int(off), seq))
        key_parts[k].add(int(part))

    missing = sorted(set(range(n)) - set(seen))
    assert not missing, "%d messages missing after restart, first: %s" % (
        len(missing), missing[:20])
    assert len(lines) == n
    split = {k: v for k, v in key_parts.items() if len(v) > 1}
    assert not split, "keys in several partitions: %s" % list(split.items())[:5]
    assert len(by_part) > 1, "all keys went to one partition: %s" % list(by_part)
    assert set(by_part) <= set(range(PARTITIONS))
    for part, recs in by_part.items():
        offs = [o for o, _ in recs]
        assert offs == list(range(len(recs))), \
            "partition %d: offsets not 0..n-1 in order: %s..." % (part, offs[:20])
        seqs = [s for _, s in recs]
        assert seqs == sorted(seqs), "partition %d: sequence order not kept" % part


def test_kcat_20k_keyed_messages_survive_kill9(broker_factory):
    # kcat cannot create topics: rely on auto-creation with --num-partitions 4.
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    produce_restart_consume(broker, "kcat-compat", N)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_compressed_survive_kill9(codec, broker_factory):
    """kcat's old librdkafka only compresses when the broker's ApiVersions ranges allow it
    (Produce v0 advertised; v7+ for zstd): check the stored batches really are compressed."""
    broker = broker_factory("--num-partitions", str(PARTITIONS))
    topic = "kcat-%s" % codec
    orig_restart = broker.restart
    codecs = {}

    def restart_after_codec_check():
        codecs.update(stored_codecs(broker.data_dir, topic))
        orig_restart()

    broker.restart = restart_after_codec_check
    produce_restart_consume(broker, topic, 2000, ["-z", codec])
    assert_codec(codecs, codec)
