"""Runs Apache Kafka's own command-line tools (kafka-leader-election, kafka-log-dirs,
kafka-delete-records, kafka-reassign-partitions, kafka-cluster, ...) against Samsa, from the
Kafka jars that scripts/test-deps.sh fetches from Maven Central (broker/bench/fetch-kafka.sh):
`java -cp '<kafka home>/libs/*' <main class> --bootstrap-server ... <args>`.

    from kafka_tools import run_tool
    r = run_tool("kafka-leader-election", cluster.bootstrap,
                 ["--election-type", "preferred", "--all-topic-partitions"])
    assert r.rc == 0, r

A tool's log lines go to stderr (a WARN-level log4j2 configuration written next to the jars),
so stdout holds only what the tool prints for its user. Nothing here waits on anything but the
tool's own exit (bounded by `timeout`).
"""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.1.1"

# Tool script names (as in Kafka's bin/) and their main classes.
TOOLS = {
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-cluster": "org.apache.kafka.tools.ClusterTool",
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-configs": "kafka.admin.ConfigCommand",
}

_LOG4J2 = """status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
"""


def kafka_home():
    """$SAMSA_KAFKA_HOME, else the cache directory fetch-kafka.sh fills."""
    if os.environ.get("SAMSA_KAFKA_HOME"):
        return Path(os.environ["SAMSA_KAFKA_HOME"])
    cache = Path(os.environ.get("SAMSA_CACHE", Path.home() / ".cache" / "samsa"))
    return cache / ("kafka-%s" % KAFKA_VERSION)


def missing():
    """Why the tools cannot run here (None when they can); a test fails with it."""
    if shutil.which("java") is None:
        return "java is not installed (scripts/test-deps.sh installs it)"
    libs = kafka_home() / "libs"
    if not list(libs.glob("kafka-tools-*.jar")):
        return "no Kafka tools jar in %s (run scripts/test-deps.sh)" % libs
    return None


@dataclass
class ToolResult:
    """What a tool run left: exit code, stdout, stderr, and the command line."""

    rc: int
    stdout: str
    stderr: str
    argv: list

    def json_lines(self):
        """Every stdout line that parses as a JSON object (tools print JSON on a line of its own)."""
        out = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def __str__(self):
        return "%s\nrc=%d\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.argv[-12:]), self.rc, self.stdout, self.stderr)


def _log4j_config():
    path = kafka_home() / "samsa-tools-log4j2.properties"
    if not path.exists() or path.read_text() != _LOG4J2:
        path.write_text(_LOG4J2)
    return path


def run_tool(tool, bootstrap, args=(), json_input=None, json_flag=None, timeout=120,
             extra_env=None, subcommand=None):
    """Runs `tool` (a name in TOOLS, or a main class) with `--bootstrap-server bootstrap`
    (omitted when bootstrap is None) and `args`; `subcommand` goes first, for tools that take
    one (kafka-cluster unregister --bootstrap-server ... --id 4). With `json_input` (a dict or list), it is
    written to a temporary file passed as `json_flag FILE` (e.g. --offset-json-file,
    --path-to-json-file, --reassignment-json-file). Returns a ToolResult; raises
    subprocess.TimeoutExpired after `timeout` seconds."""
    main_class = TOOLS.get(tool, tool)
    argv = [
        "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-Dlog4j2.configurationFile=%s" % _log4j_config(),
        "-cp", str(kafka_home() / "libs" / "*"),
        main_class,
    ]
    if subcommand:
        argv.append(subcommand)
    if bootstrap is not None:
        argv += ["--bootstrap-server", bootstrap]
    argv += [str(a) for a in args]
    env = dict(os.environ)
    env.update(extra_env or {})
    tmp = None
    try:
        if json_input is not None:
            if not json_flag:
                raise ValueError("json_input needs json_flag, the option naming the file")
            fd, tmp = tempfile.mkstemp(prefix="samsa-tool-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(json_input, f)
            argv += [json_flag, tmp]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
        return ToolResult(r.returncode, r.stdout, r.stderr, argv)
    finally:
        if tmp:
            os.unlink(tmp)
