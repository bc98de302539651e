"""Broker epochs on replica fetches, on a real three-broker cluster (e2e/local-cluster, every
broker also a controller; the Cluster helper of test_cluster).

A follower stamps its replica fetches with its broker epoch (the metadata version at which its
process registered). The leader refuses fetches from a fenced broker (INELIGIBLE_REPLICA, 107)
or from an older epoch than its metadata names (STALE_BROKER_EPOCH, 77), and counts neither for
the high watermark nor for the ISR; it serves, without counting, an epoch newer than it knows.

- fenced follower: a SIGSTOPped follower is fenced once its session times out and leaves the
  ISR; acks=all still works with two in sync. A zombie of it (this test, speaking the replica
  protocol as that broker, at the leader's log end) is refused and makes the leader propose no
  ISR change: the controllers' applied index (samsa_quorum_applied_index) stays put. Resumed,
  the real follower is unfenced by its next heartbeat, catches up and rejoins the ISR, without a
  storm of refusal logs.
- stale epoch: while an in-sync follower is paused (not yet fenced) and the leader takes acks=1
  records, a fetch at the leader's log end in that follower's name with an older broker epoch,
  or with an epoch newer than the leader knows, does not move the high watermark.

The replica protocol is gRPC (proto/samsa/v1/replica.proto); the test encodes the few protobuf
fields by hand and sends them with curl over HTTP/2 (no gRPC library in the client venvs).
Waits poll conditions with deadlines; nothing depends on a bare sleep."""

import re
import subprocess
import time
from pathlib import Path

from confluent_kafka import Producer

from helpers import wait_until
from test_cluster import cluster_factory, produce_one  # noqa: F401 (the fixture)

SESSION_MS = 8000
ARGS = [
    "--broker-session-timeout-ms=%d" % SESSION_MS,
    "--broker-heartbeat-interval-ms=500",
    # Followers leave the ISR only by being fenced, not by lagging, within the test.
    "--replica-lag-time-max-ms=120000",
]

STALE_BROKER_EPOCH = 77
INELIGIBLE_REPLICA = 107


# --- a minimal protobuf codec for samsa.v1.ReplicaFetchRequest / ReplicaFetchReply ---------

def _varint(v):
    v &= (1 << 64) - 1  # negative int32/int64 values are ten-byte two's complement
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _int(field, v):
    return _varint(field << 3) + _varint(v)


def _bytes(field, b):
    return _varint(field << 3 | 2) + _varint(len(b)) + b


def _fields(buf):
    """(field, wire type, value) of each field of a message: ints for varints, bytes for
    length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
            yield field, wire, v - (1 << 64) if v >= 1 << 63 else v
        elif wire == 2:
            n, i = _read_varint(buf, i)
            yield field, wire, buf[i:i + n]
            i += n
        elif wire == 1:
            yield field, wire, buf[i:i + 8]
            i += 8
        elif wire == 5:
            yield field, wire, buf[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wire)


def _read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def replica_fetch(port, replica_id, broker_epoch, topic, partition, fetch_offset):
    """One samsa.v1.Replica/Fetch of one partition at `fetch_offset`, as broker `replica_id`
    stamped with `broker_epoch`, without waiting at the leader: the partition's reply as a
    dict (error_code, high_watermark, log_end_offset, records)."""
    part = (_bytes(1, topic.encode()) + _int(2, partition) + _int(3, fetch_offset)
            + _int(4, -1)  # current_leader_epoch: not checked
            + _int(5, -1)  # last_fetched_epoch: no divergence check
            + _int(6, 0))
    request = (_int(1, replica_id) + _int(2, 0) + _int(3, 1 << 20) + _bytes(4, part)
               + _int(5, broker_epoch))
    frame = b"\x00" + len(request).to_bytes(4, "big") + request
    r = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", "-X", "POST",
         "-H", "content-type: application/grpc", "-H", "te: trailers", "--data-binary", "@-",
         "--output", "-", "http://127.0.0.1:%d/samsa.v1.Replica/Fetch" % port],
        input=frame, capture_output=True, timeout=30)
    body = r.stdout
    if r.returncode != 0 or len(body) < 5:
        raise AssertionError("replica fetch failed (curl %d): %r %r" % (r.returncode, body, r.stderr))
    reply = body[5:5 + int.from_bytes(body[1:5], "big")]
    parts = [v for f, w, v in _fields(reply) if f == 1 and w == 2]
    assert len(parts) == 1, parts
    out = {"error_code": 0, "high_watermark": 0, "log_end_offset": 0, "records": b""}
    names = {3: "error_code", 4: "high_watermark", 6: "log_end_offset", 9: "records"}
    for f, _, v in _fields(parts[0]):
        if f in names:
            out[names[f]] = v
    return out


# --- cluster helpers ------------------------------------------------------------------------

def broker_epoch(cl, broker):
    """The broker epoch the broker's fetchers last logged sending (its registration's
    metadata version), once it knows it."""
    log = Path(cl.run("logs", str(broker)).strip()).read_text(errors="replace")
    epochs = [int(e) for e in re.findall(r"replica fetches carry broker epoch (-?\d+)", log)]
    return epochs[-1] if epochs and epochs[-1] > 0 else None


def log_text(cl, broker):
    return Path(cl.run("logs", str(broker)).strip()).read_text(errors="replace")


def applied_index(cl, broker):
    return cl.gauge(broker, "samsa_quorum_applied_index")


def high_watermark(cl, leader, topic):
    """The leader's high watermark of partition 0, from its /metrics (set as it moves; no
    client asks, since a consumer's group lookup would create __consumer_offsets and add
    metadata entries to the count this test watches)."""
    v = cl.gauge(leader, "samsa_partition_high_watermark", '{partition="0",topic="%s"}' % topic)
    return None if v is None else int(v)


def produce(cl, broker, topic, n, acks):
    """Produces n records to partition 0 through `broker`; the offset after the last."""
    offsets = []
    p = Producer({"bootstrap.servers": cl.addr(broker), "acks": acks,
                  "message.timeout.ms": 15000})
    for i in range(n):
        p.produce(topic, value=b"r%03d" % i, partition=0,
                  on_delivery=lambda err, msg: offsets.append(None if err else msg.offset()))
    assert p.flush(30) == 0
    assert len(offsets) == n and None not in offsets, offsets
    return max(offsets) + 1


def holds(cond, seconds, what, interval=0.1):
    """cond() stays true for `seconds` (polled); fails at the first false."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert cond(), what
        time.sleep(interval)


def test_a_fenced_or_stale_follower_moves_nothing(cluster_factory):  # noqa: F811
    cl = cluster_factory(3, ARGS)
    q = wait_until(cl.quorum_leader, 30, "a quorum leader")
    # The partition leader is the quorum leader, never paused; so the quorum keeps its
    # leader and the applied index is read from one place.
    leader = q
    f, g = [b for b in (1, 2, 3) if b != leader]
    topic = "fenced"
    cl.create_topic(topic, 1, 3, {"min.insync.replicas": "2"}, assignment=[[leader, g, f]])
    wait_until(lambda: cl.partition(topic, 0, via=leader)[0] == leader
               and cl.partition(topic, 0, via=leader)[2] == [1, 2, 3], 30, "ISR of three")
    end = produce(cl, leader, topic, 10, "all")
    ef = wait_until(lambda: broker_epoch(cl, f), 30, "broker %d's epoch in its log" % f)
    eg = wait_until(lambda: broker_epoch(cl, g), 30, "broker %d's epoch in its log" % g)
    repl = cl.base + 20000 + leader - 1

    # 1. The follower f is paused past its session: fenced, out of the ISR.
    cl.run("pause", str(f))
    try:
        wait_until(lambda: cl.partition(topic, 0, via=leader)[2] == sorted([leader, g]),
                   SESSION_MS / 1000 + 30, "broker %d fenced and out of the ISR" % f)
        wait_until(lambda: cl.gauge(q, "samsa_controller_fenced_brokers") == 1, 10,
                   "one fenced broker")
        end = produce(cl, leader, topic, 10, "all")
        end = produce(cl, leader, topic, 10, "1")
        wait_until(lambda: high_watermark(cl, leader, topic) == end, 10, "HW at the log end")
        a0 = applied_index(cl, q)
        # A zombie of f fetches at the leader's log end: caught up, as far as it claims.
        # Before broker epochs, each such fetch made the leader propose f for the ISR and the
        # controller commit a refusal.
        codes = []
        for _ in range(15):
            codes.append(replica_fetch(repl, f, ef, topic, 0, end)["error_code"])
            codes.append(replica_fetch(repl, f, ef - 1, topic, 0, end)["error_code"])
            newer = replica_fetch(repl, f, ef + 1000000, topic, 0, end)
            codes.append(newer["error_code"])
        holds(lambda: cl.partition(topic, 0, via=leader)[2] == sorted([leader, g]), 3,
              "the fenced broker stays out of the ISR")
        a1 = applied_index(cl, q)
        print("applied index %s -> %s over 45 zombie fetches of fenced broker %d" % (a0, a1, f))
        assert a1 - a0 <= 2, "the controller committed %d entries" % (a1 - a0)
        assert codes == [INELIGIBLE_REPLICA, STALE_BROKER_EPOCH, 0] * 15, codes
        assert log_text(cl, leader).count("ISR change refused") == 0
    finally:
        cl.run("resume", str(f), check=False)

    # 2. Resumed, f heartbeats (unfenced), catches up and rejoins the ISR everywhere.
    def isr_everywhere():
        return [cl.partition(topic, 0, via=b)[2] for b in (1, 2, 3)]

    wait_until(lambda: isr_everywhere() == [[1, 2, 3]] * 3, 60, "broker %d back in the ISR" % f)
    wait_until(lambda: cl.gauge(q, "samsa_controller_fenced_brokers") == 0, 10, "none fenced")
    refusals = log_text(cl, f).count("the leader refuses this broker's fetches")
    print("broker %d: %d refusal log lines after resume" % (f, refusals))
    assert refusals <= 2, "a refusal per fetch, not per change"
    end = produce(cl, leader, topic, 5, "all")

    # 3. g, in sync, is paused; before its session ends the leader takes acks=1 records that
    # only it and f have. Fetches in g's name with an older broker epoch (a process that is
    # gone) or a newer one (the leader cannot vouch for it) must not move the HW past g.
    cl.run("pause", str(g))
    try:
        paused = time.monotonic()
        hw0 = high_watermark(cl, leader, topic)
        tail = produce(cl, leader, topic, 5, "1")
        stale = replica_fetch(repl, g, eg - 1, topic, 0, tail)
        newer = replica_fetch(repl, g, eg + 1000000, topic, 0, tail)
        hw = high_watermark(cl, leader, topic)
        isr = cl.partition(topic, 0, via=leader)[2]
        took = time.monotonic() - paused
        assert isr == [1, 2, 3], "broker %d left the ISR before the check (%.1fs): %s" % (
            g, took, isr)
        print("stale/newer epoch fetches of paused broker %d: HW %d (log end %d) after %.1fs"
              % (g, hw, tail, took))
        assert hw == hw0 and hw < tail, (hw0, hw, tail)
        assert stale["error_code"] == STALE_BROKER_EPOCH, stale
        assert newer["error_code"] == 0 and newer["high_watermark"] < tail, newer
        # Once g is fenced, the ISR shrinks and the HW reaches the log end.
        wait_until(lambda: high_watermark(cl, leader, topic) == tail, SESSION_MS / 1000 + 30,
                   "HW at the log end once broker %d is fenced" % g)
    finally:
        cl.run("resume", str(g), check=False)
    wait_until(lambda: isr_everywhere() == [[1, 2, 3]] * 3, 60, "broker %d back in the ISR" % g)
    assert produce_one(cl.bootstrap, topic, b"after")[0] is None
