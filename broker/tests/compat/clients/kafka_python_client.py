"""kafka-python driver for the compat tests; runs in either venv (kafka-python latest or 2.0.2).

    python kafka_python_client.py produce --bootstrap H:P --topic T --records FILE [--acks all|1|0]
        [--compression none|gzip|...] [--linger-ms N]
    python kafka_python_client.py consume --bootstrap H:P --topic T --partitions N
        [--start-offset O]
    python kafka_python_client.py offsets --bootstrap H:P --topic T --partitions N [--times T1,T2]
    python kafka_python_client.py alter-broker-config --bootstrap H:P [--config k=v] [--delete k]
        (kafka-python 3.x: IncrementalAlterConfigs on the cluster-wide BROKER resource "", built
        and sent by the client's admin internals: its public alter_configs wants a broker id)

Prints one JSON object on stdout; diagnostics go to stderr. Producer configs are otherwise the
client's defaults (kafka-python 3.x is then idempotent when acks=all).
"""

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kafka  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from common import Deadline, emit, load_records, log, tohex, unhex  # noqa: E402

CLIENT = {"client": "kafka-python", "version": kafka.__version__}


def acks_value(s):
    return "all" if s == "all" else int(s)


def produce(a):
    records = load_records(a.records)
    cfg = dict(bootstrap_servers=a.bootstrap, acks=acks_value(a.acks), linger_ms=a.linger_ms,
               request_timeout_ms=30000)
    if a.compression != "none":
        cfg["compression_type"] = a.compression
    if a.idempotence != "default":  # kafka-python 2.0.2 has no such setting
        cfg["enable_idempotence"] = a.idempotence == "on"
    producer = KafkaProducer(**cfg)
    futures = []
    for r in records:
        headers = [(h[0], unhex(h[1])) for h in r.get("h") or []]
        futures.append(producer.send(a.topic, value=unhex(r.get("v")), key=unhex(r.get("k")),
                                     headers=headers or None, partition=r.get("p"),
                                     timestamp_ms=r.get("ts")))
    producer.flush(timeout=a.timeout)
    results = []
    errors = 0
    for f in futures:
        try:
            md = f.get(timeout=30)
            results.append({"p": md.partition, "o": md.offset, "ts": md.timestamp})
        except Exception as e:  # reported per record, the test decides
            errors += 1
            results.append({"error": "%s: %s" % (type(e).__name__, e)})
    producer.close(timeout=10)
    log("produced %d records, %d errors" % (len(records), errors))
    emit(dict(CLIENT, results=results, errors=errors))


def new_consumer(a):
    cfg = dict(bootstrap_servers=a.bootstrap, group_id=None, enable_auto_commit=False,
               auto_offset_reset="earliest", request_timeout_ms=30000, fetch_max_wait_ms=200)
    if a.max_partition_fetch_bytes:
        cfg["max_partition_fetch_bytes"] = a.max_partition_fetch_bytes
    return KafkaConsumer(**cfg)


def consume(a):
    consumer = new_consumer(a)
    tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
    consumer.assign(tps)
    begins = consumer.beginning_offsets(tps)
    ends = consumer.end_offsets(tps)
    if a.start_offset is None:
        consumer.seek_to_beginning(*tps)
    else:
        for tp in tps:
            consumer.seek(tp, a.start_offset)
    next_off = {tp: begins[tp] if a.start_offset is None else a.start_offset for tp in tps}
    out = []
    deadline = Deadline(a.timeout)
    while not all(next_off[tp] >= ends[tp] for tp in tps) and not deadline.passed():
        batch = consumer.poll(timeout_ms=500)
        for tp, recs in batch.items():
            for m in recs:
                out.append({"p": m.partition, "o": m.offset, "k": tohex(m.key), "v": tohex(m.value),
                            "h": [[h[0], tohex(h[1])] for h in (m.headers or [])],
                            "ts": m.timestamp, "ts_type": m.timestamp_type})
                next_off[tp] = max(next_off[tp], m.offset + 1)
    timed_out = not all(next_off[tp] >= ends[tp] for tp in tps)
    partitions = consumer.partitions_for_topic(a.topic)
    consumer.close()
    emit(dict(CLIENT, records=out, timed_out=timed_out,
              beginning={str(tp.partition): o for tp, o in begins.items()},
              end={str(tp.partition): o for tp, o in ends.items()},
              partitions=sorted(partitions) if partitions else None))


def offsets(a):
    consumer = new_consumer(a)
    tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
    begins = consumer.beginning_offsets(tps)
    ends = consumer.end_offsets(tps)
    for_times = {}
    for t in [int(x) for x in a.times.split(",") if x]:
        res = consumer.offsets_for_times({tp: t for tp in tps})
        for_times[str(t)] = {str(tp.partition): (None if v is None else [v.offset, v.timestamp])
                             for tp, v in res.items()}
    consumer.close()
    emit(dict(CLIENT, beginning={str(tp.partition): o for tp, o in begins.items()},
              end={str(tp.partition): o for tp, o in ends.items()}, for_times=for_times))


def alter_broker_config(a):
    from kafka.admin import AlterConfigOp, ConfigResource, KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=a.bootstrap)
    configs = {k: (AlterConfigOp.SET, v) for k, v in (kv.split("=", 1) for kv in a.config)}
    configs.update({k: (AlterConfigOp.DELETE, None) for k in a.delete})
    # alter_configs() insists on a broker id as the BROKER resource name, so the request it
    # would send for the cluster-wide default (name "") is built and sent one level down.
    request = admin._alter_configs_request([ConfigResource("BROKER", "", configs)],
                                           validate_only=False, incremental=True)
    response = admin._manager.run(admin._manager.send, request)
    res = admin._alter_configs_process_responses(response.responses)
    admin.close()
    emit(dict(CLIENT, result=res.get("broker", {}).get("")))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["produce", "consume", "offsets", "alter-broker-config"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic")
    p.add_argument("--config", action="append", default=[], help="broker config k=v to set")
    p.add_argument("--delete", action="append", default=[], help="broker config to delete")
    p.add_argument("--records")
    p.add_argument("--acks", default="all")
    p.add_argument("--compression", default="none")
    p.add_argument("--idempotence", choices=["default", "on", "off"], default="default")
    p.add_argument("--linger-ms", type=int, default=5)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--times", default="")
    p.add_argument("--max-partition-fetch-bytes", type=int)
    p.add_argument("--start-offset", type=int, help="consume from this offset, not the start")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    logging.basicConfig(level=os.environ.get("COMPAT_CLIENT_LOG", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log("%s %s mode=%s" % (CLIENT["client"], CLIENT["version"], a.mode))
    {"produce": produce, "consume": consume, "offsets": offsets,
     "alter-broker-config": alter_broker_config}[a.mode](a)


if __name__ == "__main__":
    main()
