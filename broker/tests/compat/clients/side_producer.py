"""Produces records to one partition through one broker and reports, as JSON on stdout, which
were acknowledged (with their offsets) and which failed (with the error names).

Used by the network-partition test from inside an isolated broker's network namespace, where
that broker is the only one reachable. Runs with confluent-kafka.

    side_producer.py BOOTSTRAP TOPIC PARTITION PREFIX COUNT TIMEOUT_MS
"""

import json
import sys

from confluent_kafka import Producer


def main():
    bootstrap, topic, partition, prefix, count, timeout_ms = sys.argv[1:7]
    partition, count, timeout_ms = int(partition), int(count), int(timeout_ms)
    acked, failed = [], []

    def done(err, msg):
        if err is None:
            acked.append([msg.value().decode(), msg.offset()])
        else:
            failed.append([msg.value().decode(), err.name()])

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 5,
        "message.timeout.ms": timeout_ms,
        "request.timeout.ms": timeout_ms,
    })
    for i in range(count):
        p.produce(topic, value=b"%s%05d" % (prefix.encode(), i), partition=partition,
                  on_delivery=done)
    left = p.flush(timeout_ms / 1000 + 30)
    json.dump({"acked": acked, "failed": failed, "unresolved": left}, sys.stdout)


if __name__ == "__main__":
    main()
