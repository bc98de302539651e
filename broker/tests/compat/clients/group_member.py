"""A consumer-group member for the compat tests, with kafka-python or confluent-kafka.

    python group_member.py --lib kafka-python|confluent --bootstrap H:P --topic T --group G
        --out FILE --stop FILE

Subscribes to T in group G (auto.offset.reset earliest, offsets committed after each poll),
appends one line `partition:offset:value` per record to --out (flushed per poll), and leaves
the group cleanly (commit + close) once the --stop file exists. Prints one JSON summary line.
"""

import argparse
import json
import os
import sys


def run_kafka_python(a, out):
    import kafka
    c = kafka.KafkaConsumer(a.topic, bootstrap_servers=a.bootstrap, group_id=a.group,
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            session_timeout_ms=6000, heartbeat_interval_ms=500,
                            client_id="compat-%d" % os.getpid())
    n = 0
    while not os.path.exists(a.stop):
        polled = c.poll(timeout_ms=200)
        for records in polled.values():
            for r in records:
                out.write("%d:%d:%s\n" % (r.partition, r.offset, r.value.decode()))
                n += 1
        if polled:
            out.flush()
            c.commit()
    try:
        c.commit()
    except kafka.errors.RebalanceInProgressError:
        # Another member left first and the group is rebalancing: the broker refuses commits
        # until it completes (as Kafka does). Every polled batch was committed above.
        pass
    c.close()
    return {"client": "kafka-python", "version": kafka.__version__, "consumed": n}


def run_confluent(a, out):
    import confluent_kafka
    c = confluent_kafka.Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([a.topic])
    n = 0
    while not os.path.exists(a.stop):
        msgs = c.consume(num_messages=500, timeout=0.2)
        good = [m for m in msgs if m.error() is None]
        for m in good:
            out.write("%d:%d:%s\n" % (m.partition(), m.offset(), m.value().decode()))
            n += 1
        if good:
            out.flush()
            c.commit(asynchronous=False)
    c.close()
    return {"client": "confluent-kafka", "version": confluent_kafka.version()[0], "consumed": n}


def main():
    p = argparse.ArgumentParser()
    for flag in ("--lib", "--bootstrap", "--topic", "--group", "--out", "--stop"):
        p.add_argument(flag, required=True)
    a = p.parse_args()
    with open(a.out, "a", encoding="utf-8") as out:
        summary = run_kafka_python(a, out) if a.lib == "kafka-python" else run_confluent(a, out)
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
