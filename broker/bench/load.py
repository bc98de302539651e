#!/usr/bin/env python3
"""librdkafka load generator for the Samsa-vs-Kafka benchmark (confluent-kafka client).

One process per workload, started by bench.py pinned to the client core. Every mode is bounded
in message count and in time, talks only to the bootstrap address it is given (loopback), and
prints one JSON object on its last stdout line:

  produce  : max-throughput producer (acks as given, no compression, no keys)
  consume  : manual assign() of every partition from the earliest offset, reads up to the
             high watermarks seen at start (no consumer group is used)
  latency  : open-loop producer at a fixed rate with the send time (CLOCK_MONOTONIC, ns) in the
             first 8 bytes of each value, and a consumer in a second process (own GIL) that
             records receive time - send time; reports p50/p99/p99.9 after a warm-up

Payloads come from the same file Kafka's ProducerPerformance reads (--payload-file): one
payload a line, 1 KiB each, half random, half constant.
"""

import argparse
import json
import multiprocessing as mp
import struct
import sys
import time
from array import array

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

# Settings shared by both brokers; every one is printed in the JSON result.
PRODUCER_BASE = {
    "compression.type": "none",
    "enable.idempotence": False,
    "queue.buffering.max.kbytes": 65536,
    "queue.buffering.max.messages": 200000,
    "batch.size": 65536,
    "message.timeout.ms": 120000,
}
CONSUMER_BASE = {
    "group.id": "samsa-bench",  # required by confluent-kafka; assign() never uses the group
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": False,
    "fetch.wait.max.ms": 100,
}


def load_payloads(path):
    with open(path, "rb") as f:
        payloads = [line.rstrip(b"\n") for line in f if line.strip()]
    if not payloads:
        raise SystemExit(f"no payloads in {path}")
    return payloads


def partitions_of(client, topic, timeout=30.0):
    """Partition ids of topic, waiting (bounded) until every partition has a leader."""
    deadline = time.monotonic() + timeout
    while True:
        md = client.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and t.partitions and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return sorted(t.partitions)
        if time.monotonic() > deadline:
            raise SystemExit(f"topic {topic}: no leaders after {timeout}s ({t and t.error})")
        time.sleep(0.05)


def ready_messages(consumer, most):
    """Waits (up to 50 ms) for one message, then returns it with whatever else is already
    fetched. consume(n, timeout) alone would wait for n messages or the whole timeout, which adds
    up to that timeout to every latency sample and to the end of a throughput run."""
    first = consumer.poll(0.05)
    if first is None:
        return []
    return [first] + consumer.consume(num_messages=most, timeout=0)


def emit(result):
    print(json.dumps(result), flush=True)


# --- produce -------------------------------------------------------------------------------------


def run_produce(a):
    payloads = load_payloads(a.payload_file)
    n_payloads = len(payloads)
    conf = dict(PRODUCER_BASE, **{
        "bootstrap.servers": a.bootstrap,
        "acks": a.acks,
        "linger.ms": a.linger_ms,
        "delivery.report.only.error": True,
    })
    errors = []

    def on_error(err, _msg):
        if len(errors) < 5:
            errors.append(str(err))
        errors_count[0] += 1

    errors_count = [0]
    conf["on_delivery"] = on_error
    p = Producer(conf)
    partitions_of(p, a.topic)
    produce = p.produce
    topic = a.topic
    start = time.monotonic()
    deadline = start + a.max_seconds
    sent = 0
    sent_bytes = 0
    timed_out = False
    while sent < a.count:
        value = payloads[sent % n_payloads]
        try:
            produce(topic, value)
        except BufferError:
            p.poll(0.001)
            if time.monotonic() > deadline:
                timed_out = True
                break
            continue
        sent += 1
        sent_bytes += len(value)
        if sent & 1023 == 0:
            p.poll(0)
            if time.monotonic() > deadline:
                timed_out = True
                break
    left = p.flush(max(5.0, deadline + 30 - time.monotonic()))
    elapsed = time.monotonic() - start
    acked = sent - errors_count[0] - left
    emit({
        "mode": "produce", "topic": topic, "acks": a.acks, "linger_ms": a.linger_ms,
        "records": acked, "bytes": int(sent_bytes * acked / max(sent, 1)), "seconds": elapsed,
        "records_per_s": acked / elapsed, "mb_per_s": sent_bytes * acked / max(sent, 1) / elapsed / 2**20,
        "errors": errors_count[0], "unflushed": left, "first_errors": errors,
        "timed_out": timed_out, "config": {k: v for k, v in conf.items() if k != "on_delivery"},
    })
    return 0 if acked > 0 else 1


# --- consume -------------------------------------------------------------------------------------


def run_consume(a):
    conf = dict(CONSUMER_BASE, **{"bootstrap.servers": a.bootstrap})
    c = Consumer(conf)
    parts = partitions_of(c, a.topic)
    target = {}
    for p in parts:
        low, high = c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=10)
        if high > low:
            target[p] = high
    expected = sum(target.values())
    c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in target])
    done = {p: False for p in target}
    records = 0
    nbytes = 0
    first_error = None
    start = time.monotonic()
    deadline = start + a.max_seconds
    remaining = len(done)
    last = start
    while remaining and time.monotonic() < deadline:
        for m in ready_messages(c, 10000):
            if m.error():
                first_error = first_error or str(m.error())
                continue
            records += 1
            nbytes += len(m.value())
            p = m.partition()
            if m.offset() + 1 >= target[p] and not done[p]:
                done[p] = True
                remaining -= 1
        last = time.monotonic()
    elapsed = last - start
    c.close()
    emit({
        "mode": "consume", "topic": a.topic, "records": records, "expected": expected,
        "bytes": nbytes, "seconds": elapsed, "records_per_s": records / elapsed,
        "mb_per_s": nbytes / elapsed / 2**20, "complete": remaining == 0,
        "first_error": first_error, "config": conf,
    })
    return 0 if records > 0 else 1


# --- latency -------------------------------------------------------------------------------------


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, int(len(sorted_values) * q))
    return sorted_values[i]


def latency_consumer(a, ready, out, measure_from_ns):
    """Child process: reads the topic from the beginning until the producer says stop."""
    conf = dict(CONSUMER_BASE, **{"bootstrap.servers": a.bootstrap})
    c = Consumer(conf)
    parts = partitions_of(c, a.topic)
    c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in parts])
    # Wait until every partition has a fetch position: one empty consume round is enough.
    c.consume(num_messages=1, timeout=1.0)
    ready.set()
    lat = array("q")
    received = 0
    started_ns = time.monotonic_ns()
    unpack = struct.Struct(">q").unpack_from
    now = time.monotonic_ns
    hard_deadline = time.monotonic() + a.seconds + a.warmup + 60
    expected = None
    while time.monotonic() < hard_deadline:
        if expected is None and out.poll():
            expected = out.recv()  # what the producer got acknowledged: drain up to that
            hard_deadline = min(hard_deadline, time.monotonic() + 10)
        if expected is not None and received >= expected:
            break
        for m in ready_messages(c, 1000):
            if m.error():
                continue
            t = now()
            sent_ns = unpack(m.value())[0]
            if sent_ns < started_ns:
                continue  # left in the topic by an earlier run
            received += 1
            if sent_ns >= measure_from_ns.value:
                lat.append(t - sent_ns)
    c.close()
    out.send((received, lat.tobytes()))


def run_latency(a):
    payloads = load_payloads(a.payload_file)
    n_payloads = len(payloads)
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    parent_end, child_end = ctx.Pipe()
    measure_from = ctx.Value("q", 2**62)
    child = ctx.Process(target=latency_consumer, args=(a, ready, child_end, measure_from))
    child.start()
    if not ready.wait(60):
        child.kill()
        raise SystemExit("latency consumer did not get ready in 60 s")
    conf = dict(PRODUCER_BASE, **{
        "bootstrap.servers": a.bootstrap, "acks": a.acks, "linger.ms": a.linger_ms,
        "delivery.report.only.error": True,
    })
    p = Producer(conf)
    partitions_of(p, a.topic)
    rate = float(a.rate)
    produce = p.produce
    topic = a.topic
    now_ns = time.monotonic_ns
    pack = struct.Struct(">q").pack
    start = time.monotonic()
    measure_start = start + a.warmup
    measure_from.value = int(measure_start * 1e9)
    end = measure_start + a.seconds
    sent = 0
    dropped = 0
    while True:
        t = time.monotonic()
        if t >= end:
            break
        due = int((t - start) * rate)
        while sent < due:
            value = payloads[sent % n_payloads]
            try:
                produce(topic, pack(now_ns()) + value[8:])
            except BufferError:
                dropped += 1
                p.poll(0.001)
                break
            sent += 1
        p.poll(0)
        # Sleep until the next message is due (bounded so poll() keeps serving callbacks).
        next_due = start + (sent + 1) / rate
        pause = next_due - time.monotonic()
        if pause > 0:
            time.sleep(min(pause, 0.001))
    left = p.flush(30)
    sent_elapsed = time.monotonic() - start
    parent_end.send(sent - left)
    received, raw = None, b""
    if parent_end.poll(75):
        received, raw = parent_end.recv()
    child.join(10)
    if child.is_alive():
        child.kill()
    lat = array("q")
    lat.frombytes(raw)
    values = sorted(lat)
    ms = [v / 1e6 for v in (percentile(values, 0.5), percentile(values, 0.99),
                            percentile(values, 0.999), values[-1] if values else None)
          if v is not None]
    emit({
        "mode": "latency", "topic": topic, "target_rate": rate,
        "achieved_rate": sent / sent_elapsed if sent_elapsed else 0.0,
        "sent": sent, "unflushed": left, "buffer_full": dropped, "received": received,
        "samples": len(values), "warmup_s": a.warmup, "measure_s": a.seconds,
        "p50_ms": ms[0] if len(ms) > 0 else None, "p99_ms": ms[1] if len(ms) > 1 else None,
        "p999_ms": ms[2] if len(ms) > 2 else None, "max_ms": ms[3] if len(ms) > 3 else None,
        "config": conf,
    })
    return 0 if values else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["produce", "consume", "latency"])
    ap.add_argument("--bootstrap", required=True, help="host:port (loopback only)")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--payload-file", help="one payload a line (produce, latency)")
    ap.add_argument("--acks", default="1", choices=["0", "1", "all", "-1"])
    ap.add_argument("--linger-ms", type=float, default=5.0)
    ap.add_argument("--count", type=int, default=1_000_000, help="produce: records to send")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="produce/consume: time cap")
    ap.add_argument("--rate", type=float, default=1000.0, help="latency: messages per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="latency: measured seconds")
    ap.add_argument("--warmup", type=float, default=10.0, help="latency: unmeasured seconds first")
    a = ap.parse_args(argv)
    host = a.bootstrap.rsplit(":", 1)[0].strip("[]")
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise SystemExit(f"refusing non-loopback bootstrap {a.bootstrap}")
    if a.mode in ("produce", "latency") and not a.payload_file:
        raise SystemExit("--payload-file is required")
    try:
        return {"produce": run_produce, "consume": run_consume, "latency": run_latency}[a.mode](a)
    except KafkaException as e:
        emit({"mode": a.mode, "error": str(e)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
