"""Replication throttles set with Apache Kafka's own kafka-configs (kafka.admin.ConfigCommand
4.1.1, jars fetched by broker/bench/fetch-kafka.sh) against a three-broker Samsa cluster
(e2e/local-cluster):

- a per-broker `follower.replication.throttled.rate` (`--entity-type brokers --entity-name 2`)
  and a cluster-wide `leader.replication.throttled.rate` (`--entity-default`) are accepted,
  described by kafka-configs with their sources, and in force on the brokers (the throttle
  limit gauge); the per-broker value comes before the default on its broker only;
- the topic lists `leader/follower.replication.throttled.replicas` (kafka-configs' `[..]` list
  syntax, and `*`) are accepted and described; a malformed list is refused;
- `--delete-config` brings the broker back to unlimited.

The catch-up rate under a throttle is measured by broker/tests/throttle.rs. This file carries
its own minimal runner for Kafka's tools (no shared runner is assumed)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import wait_until
from test_cluster import cluster_factory  # noqa: F401 (fixture)

KAFKA_LIBS = Path(os.environ.get("SAMSA_CACHE", Path.home() / ".cache" / "samsa")) / "kafka-4.1.1"
UNLIMITED = float(9223372036854775807)  # as the gauge reads back
RATE = 1048576


def kafka_configs(bootstrap, *args, check=True):
    """Runs kafka.admin.ConfigCommand; returns (exit code, stdout + stderr)."""
    if shutil.which("java") is None or not (KAFKA_LIBS / "libs").is_dir():
        pytest.skip("needs java and Kafka's jars (broker/bench/fetch-kafka.sh)")
    cmd = ["java", "-cp", str(KAFKA_LIBS / "libs" / "*")]
    log4j = KAFKA_LIBS / "samsa-tools-log4j2.properties"
    if log4j.exists():
        cmd.append("-Dlog4j2.configurationFile=%s" % log4j)
    cmd += ["kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    if check:
        assert r.returncode == 0, (args, out)
    return r.returncode, out


def described(out, key):
    """The line kafka-configs --describe prints for `key`."""
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith(key + "=")]
    assert lines, (key, out)
    return lines[0]


def test_throttles_through_kafka_configs(cluster_factory):  # noqa: F811
    cluster = cluster_factory(3)
    bootstrap = cluster.bootstrap

    kafka_configs(bootstrap, "--entity-type", "brokers", "--entity-name", "2", "--alter",
                  "--add-config", "follower.replication.throttled.rate=%d" % RATE)
    kafka_configs(bootstrap, "--entity-type", "brokers", "--entity-default", "--alter",
                  "--add-config", "leader.replication.throttled.rate=%d" % (2 * RATE))

    def in_force():
        return (cluster.gauge(2, "samsa_replication_throttle_limit_bytes", '{side="follower"}') == RATE
                and all(cluster.gauge(b, "samsa_replication_throttle_limit_bytes",
                                      '{side="leader"}') == 2 * RATE for b in (1, 2, 3)))
    wait_until(in_force, 30, "throttle limits in force")
    # Broker 1 has no follower rate: unlimited.
    assert cluster.gauge(1, "samsa_replication_throttle_limit_bytes", '{side="follower"}') == UNLIMITED

    _, out = kafka_configs(bootstrap, "--entity-type", "brokers", "--entity-name", "2",
                           "--describe")
    line = described(out, "follower.replication.throttled.rate")
    assert "follower.replication.throttled.rate=%d" % RATE in line, out
    assert "DYNAMIC_BROKER_CONFIG" in line, out
    _, out = kafka_configs(bootstrap, "--entity-type", "brokers", "--entity-default",
                           "--describe")
    line = described(out, "leader.replication.throttled.rate")
    assert "leader.replication.throttled.rate=%d" % (2 * RATE) in line, out
    assert "DYNAMIC_DEFAULT_BROKER_CONFIG" in line, out

    # A bad rate is refused, naming the key.
    code, out = kafka_configs(bootstrap, "--entity-type", "brokers", "--entity-name", "2",
                              "--alter", "--add-config", "follower.replication.throttled.rate=-1",
                              check=False)
    assert code != 0 and "follower.replication.throttled.rate" in out, out

    # Topic lists, in kafka-configs' list syntax.
    cluster.create_topic("moving", 2, 2, {})
    kafka_configs(bootstrap, "--entity-type", "topics", "--entity-name", "moving", "--alter",
                  "--add-config",
                  "leader.replication.throttled.replicas=[0:1,1:2],"
                  "follower.replication.throttled.replicas=*")
    _, out = kafka_configs(bootstrap, "--entity-type", "topics", "--entity-name", "moving",
                           "--describe")
    assert "leader.replication.throttled.replicas=0:1,1:2" in out, out
    assert "follower.replication.throttled.replicas=*" in out, out
    code, out = kafka_configs(bootstrap, "--entity-type", "topics", "--entity-name", "moving",
                              "--alter", "--add-config",
                              "leader.replication.throttled.replicas=0-1", check=False)
    assert code != 0 and "leader.replication.throttled.replicas" in out, out

    # Deleting the per-broker value: broker 2 is unlimited again on the follower side.
    kafka_configs(bootstrap, "--entity-type", "brokers", "--entity-name", "2", "--alter",
                  "--delete-config", "follower.replication.throttled.rate")
    wait_until(lambda: cluster.gauge(2, "samsa_replication_throttle_limit_bytes",
                                     '{side="follower"}') == UNLIMITED,
               30, "follower throttle removed")
