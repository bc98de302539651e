"""confluent-kafka (librdkafka) driver for the compat tests.

    python confluent_client.py produce --bootstrap H:P --topic T --records FILE [--acks all]
        [--compression none|gzip|snappy|lz4|zstd] [--linger-ms N] [--rate RECORDS_PER_S]
    python confluent_client.py consume --bootstrap H:P --topic T --partitions N [--start-offset O]
    python confluent_client.py offsets --bootstrap H:P --topic T --partitions N [--times T1,T2]
    python confluent_client.py admin --op create-topic|create-partitions|delete-topic|
        describe-config|list-topics --bootstrap H:P [--topic T] [--partitions N] [--config k=v]
    python confluent_client.py admin --op alter-broker-config|describe-broker-config
        --bootstrap H:P [--broker NAME] [--config k=v] [--delete k]
        (incremental_alter_configs / describe_configs of the BROKER resource NAME, default "":
        the cluster-wide default; librdkafka refuses an empty name locally, see FINDINGS.md)

Prints one JSON object on stdout; librdkafka and driver diagnostics go to stderr.
COMPAT_RDKAFKA_DEBUG=protocol,broker,... turns on librdkafka debug contexts.
"""

import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import confluent_kafka  # noqa: E402
from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions,
    NewTopic, ResourceType)

from common import Deadline, emit, load_records, log, tohex, unhex  # noqa: E402

_v = confluent_kafka.version()  # a (str, int) tuple in older releases, a str in 2.16
CLIENT = {"client": "confluent-kafka",
          "version": getattr(confluent_kafka, "__version__", None)
          or (_v[0] if isinstance(_v, tuple) else _v),
          "librdkafka": confluent_kafka.libversion()[0]}

client_errors = []


def error_cb(err):
    client_errors.append({"code": err.name(), "str": err.str()})
    log("client error: %s" % err.str())


def base_conf(a):
    conf = {"bootstrap.servers": a.bootstrap, "error_cb": error_cb}
    if os.environ.get("COMPAT_RDKAFKA_DEBUG"):
        conf["debug"] = os.environ["COMPAT_RDKAFKA_DEBUG"]
    return conf


def kerr(e):
    """A KafkaError / KafkaException as JSON."""
    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        e = e.args[0]
    if isinstance(e, KafkaError):
        return {"code": e.name(), "num": e.code(), "str": e.str()}
    return {"code": type(e).__name__, "num": None, "str": str(e)}


def produce(a):
    records = load_records(a.records)
    conf = base_conf(a)
    conf.update({"acks": a.acks, "linger.ms": a.linger_ms, "compression.type": a.compression,
                 "message.timeout.ms": int(a.timeout * 1000)})
    conf.update(kv.split("=", 1) for kv in a.set)
    producer = Producer(conf)
    results = [None] * len(records)
    acked = [0]

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                results[i] = {"error": err.str(), "code": err.name()}
            else:
                results[i] = {"p": msg.partition(), "o": msg.offset(), "ts": msg.timestamp()[1],
                              "ts_type": msg.timestamp()[0]}
                acked[0] += 1
                if acked[0] % 500 == 0:
                    log("progress acked=%d" % acked[0])
        return cb

    start = time.monotonic()
    for i, r in enumerate(records):
        if a.rate and i % 50 == 0:
            # Pacing (not synchronisation): stay at --rate records per second.
            ahead = i / a.rate - (time.monotonic() - start)
            if ahead > 0:
                producer.poll(ahead)
        kw = dict(value=unhex(r.get("v")), key=unhex(r.get("k")), on_delivery=on_delivery(i))
        if r.get("h"):
            kw["headers"] = [(h[0], unhex(h[1])) for h in r["h"]]
        if r.get("p") is not None:
            kw["partition"] = r["p"]
        if r.get("ts") is not None:
            kw["timestamp"] = r["ts"]
        while True:
            try:
                producer.produce(a.topic, **kw)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(a.timeout)
    errors = sum(1 for r in results if r is None or "error" in r)
    results = [r if r is not None else {"error": "no delivery report"} for r in results]
    log("produced %d records, %d errors, %d left in queue" % (len(records), errors, left))
    emit(dict(CLIENT, results=results, errors=errors, client_errors=client_errors))


def new_consumer(a):
    conf = base_conf(a)
    conf.update({"group.id": "samsa-compat-%s" % uuid.uuid4().hex[:8],
                 "enable.auto.commit": False, "enable.auto.offset.store": False,
                 "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    if a.max_partition_fetch_bytes:
        conf["max.partition.fetch.bytes"] = a.max_partition_fetch_bytes
    return Consumer(conf)


def consume(a):
    consumer = new_consumer(a)
    deadline = Deadline(a.timeout)
    watermarks = {}
    for p in range(a.partitions):
        watermarks[p] = consumer.get_watermark_offsets(TopicPartition(a.topic, p), timeout=15)
    start = OFFSET_BEGINNING if a.start_offset is None else a.start_offset
    consumer.assign([TopicPartition(a.topic, p, start) for p in range(a.partitions)])
    next_off = {p: watermarks[p][0] if a.start_offset is None else a.start_offset
                for p in watermarks}
    out, fetch_errors = [], []
    while not all(next_off[p] >= watermarks[p][1] for p in watermarks) and not deadline.passed():
        for m in consumer.consume(num_messages=1000, timeout=0.5):
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    fetch_errors.append(kerr(m.error()))
                continue
            ts_type, ts = m.timestamp()
            out.append({"p": m.partition(), "o": m.offset(), "k": tohex(m.key()),
                        "v": tohex(m.value()),
                        "h": [[h[0], tohex(h[1])] for h in (m.headers() or [])],
                        "ts": ts, "ts_type": ts_type})
            next_off[m.partition()] = max(next_off[m.partition()], m.offset() + 1)
    timed_out = not all(next_off[p] >= watermarks[p][1] for p in watermarks)
    consumer.close()
    emit(dict(CLIENT, records=out, timed_out=timed_out, fetch_errors=fetch_errors,
              client_errors=client_errors,
              beginning={str(p): w[0] for p, w in watermarks.items()},
              end={str(p): w[1] for p, w in watermarks.items()}))


def offsets(a):
    consumer = new_consumer(a)
    wm = {p: consumer.get_watermark_offsets(TopicPartition(a.topic, p), timeout=15)
          for p in range(a.partitions)}
    for_times = {}
    for t in [int(x) for x in a.times.split(",") if x]:
        res = consumer.offsets_for_times(
            [TopicPartition(a.topic, p, t) for p in range(a.partitions)], timeout=15)
        for_times[str(t)] = {str(tp.partition): {"offset": tp.offset,
                                                 "error": kerr(tp.error) if tp.error else None}
                             for tp in res}
    consumer.close()
    emit(dict(CLIENT, beginning={str(p): w[0] for p, w in wm.items()},
              end={str(p): w[1] for p, w in wm.items()}, for_times=for_times,
              client_errors=client_errors))


def source_name(s):
    try:
        return ConfigSource(s).name
    except ValueError:
        return str(s)


def admin(a):
    ad = AdminClient(base_conf(a))
    res = {"op": a.op}
    try:
        if a.op == "create-topic":
            cfg = dict(kv.split("=", 1) for kv in a.config)
            fut = ad.create_topics([NewTopic(a.topic, num_partitions=a.partitions,
                                             replication_factor=a.replication_factor,
                                             config=cfg)],
                                   operation_timeout=15, request_timeout=15)[a.topic]
            fut.result(timeout=30)
        elif a.op == "create-partitions":
            fut = ad.create_partitions([NewPartitions(a.topic, a.partitions)],
                                       operation_timeout=15, request_timeout=15)[a.topic]
            fut.result(timeout=30)
        elif a.op == "delete-topic":
            fut = ad.delete_topics([a.topic], operation_timeout=15, request_timeout=15)[a.topic]
            fut.result(timeout=30)
        elif a.op == "alter-broker-config":
            ops = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                   for k, v in (kv.split("=", 1) for kv in a.config)]
            ops += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
                    for k in a.delete]
            r = ConfigResource(ResourceType.BROKER, a.broker, incremental_configs=ops)
            ad.incremental_alter_configs([r], request_timeout=15)[r].result(timeout=30)
        elif a.op in ("describe-config", "describe-broker-config"):
            if a.op == "describe-config":
                r = ConfigResource(ResourceType.TOPIC, a.topic)
            else:
                r = ConfigResource(ResourceType.BROKER, a.broker)
            entries = ad.describe_configs([r], request_timeout=15)[r].result(timeout=30)
            res["configs"] = {
                name: {"value": e.value, "source": source_name(e.source),
                       "is_default": e.is_default, "is_read_only": e.is_read_only,
                       "is_sensitive": e.is_sensitive}
                for name, e in entries.items()}
        elif a.op == "list-topics":
            md = ad.list_topics(timeout=15)
            res["cluster_id"] = md.cluster_id
            res["controller_id"] = md.controller_id
            res["brokers"] = {str(b.id): "%s:%d" % (b.host, b.port) for b in md.brokers.values()}
            res["topics"] = {
                name: {"error": kerr(t.error) if t.error else None,
                       "partitions": {str(p.id): {"leader": p.leader, "replicas": p.replicas,
                                                  "isrs": p.isrs,
                                                  "error": kerr(p.error) if p.error else None}
                                      for p in t.partitions.values()}}
                for name, t in md.topics.items()}
        res["error"] = None
    except (KafkaException, KafkaError) as e:
        res["error"] = kerr(e)
    except ValueError as e:
        # Refused by the client itself, before any request.
        res["error"] = {"code": "ValueError", "num": None, "str": str(e)}
    res["client_errors"] = client_errors
    emit(dict(CLIENT, **res))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["produce", "consume", "offsets", "admin"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic")
    p.add_argument("--records")
    p.add_argument("--acks", default="all")
    p.add_argument("--compression", default="none")
    p.add_argument("--linger-ms", type=int, default=5)
    p.add_argument("--rate", type=float, default=0, help="records per second (0: no limit)")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--replication-factor", type=int, default=1)
    p.add_argument("--config", action="append", default=[], help="topic config (admin)")
    p.add_argument("--set", action="append", default=[], help="producer setting k=v")
    p.add_argument("--delete", action="append", default=[], help="broker config to delete (admin)")
    p.add_argument("--broker", default="", help="BROKER config resource name (admin)")
    p.add_argument("--op")
    p.add_argument("--times", default="")
    p.add_argument("--max-partition-fetch-bytes", type=int)
    p.add_argument("--start-offset", type=int, help="consume from this offset, not the start")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    log("%s %s (librdkafka %s) mode=%s op=%s" % (CLIENT["client"], CLIENT["version"],
                                                 CLIENT["librdkafka"], a.mode, a.op))
    {"produce": produce, "consume": consume, "offsets": offsets, "admin": admin}[a.mode](a)


if __name__ == "__main__":
    main()
