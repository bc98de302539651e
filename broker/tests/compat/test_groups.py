"""Consumer groups with kcat's balanced consumer (librdkafka 2.0.2): three members share a
6-partition topic, a killed member's partitions move to the others, and a restarted member
resumes from the committed offsets."""

import shutil
import signal
import subprocess

import pytest

from helpers import CLIENTS, wait_until

PARTITIONS = 6
GROUP = "g1"


def kcat_exe():
    exe = shutil.which("kcat")
    if exe is None:
        pytest.fail("kcat not installed: run scripts/test-deps.sh", pytrace=False)
    return exe


def produce(broker, topic, lines):
    payload = "".join("k%d:%s\n" % (i % 50, v) for i, v in enumerate(lines)).encode()
    p = subprocess.run([kcat_exe(), "-P", "-b", broker.bootstrap, "-t", topic, "-K:",
                        "-X", "acks=all"], input=payload, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]


class Member:
    """One `kcat -G` balanced consumer writing `partition:offset:value` lines to a file."""

    def __init__(self, broker, topic, workdir, name):
        self.out_path = workdir / ("%s.out" % name)
        self.err_path = workdir / ("%s.err" % name)
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [kcat_exe(), "-b", broker.bootstrap, "-G", GROUP, topic, "-f", "%p:%o:%s\\n",
             "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000",
             "-X", "heartbeat.interval.ms=500", "-X", "auto.commit.interval.ms=200",
             "-q", "-u"],
            stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)

    def lines(self):
        self.out.flush()
        text = self.out_path.read_text(errors="replace")
        return [tuple(line.split(":", 2)) for line in text.splitlines() if line.count(":") >= 2]

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.out.close()
        self.err.close()


def values(members, prefix):
    got = []
    for m in members:
        got.extend((m, int(p), int(o), v) for p, o, v in m.lines() if v.startswith(prefix))
    return got


def test_kcat_group_shares_fails_over_and_resumes(broker_factory, tmp_path):
    broker = broker_factory("--num-partitions", str(PARTITIONS),
                            "--group-initial-rebalance-delay-ms", "500",
                            "--group-min-session-timeout-ms", "1000")
    topic = "grouped"
    produce(broker, topic, ["warmup"])  # creates the topic
    members = [Member(broker, topic, tmp_path, "m%d" % i) for i in range(3)]
    try:
        # Phase 1: all three share the topic; every message exactly once, each partition
        # read by exactly one member.
        wait_until(lambda: len(values(members, "warmup")) >= 1, 60, "warm-up message consumed")
        batch1 = ["one-%05d" % i for i in range(3000)]
        produce(broker, topic, batch1)
        wait_until(lambda: len(values(members, "one-")) >= len(batch1), 90,
                   "all of batch 1 consumed")
        got = values(members, "one-")
        seen = [v for _, _, _, v in got]
        assert sorted(seen) == sorted(batch1), "each message exactly once"
        owners = {}
        for m, p, _, _ in got:
            owners.setdefault(p, set()).add(m)
        assert all(len(o) == 1 for o in owners.values()), "a partition read by two members"
        busy = {m for o in owners.values() for m in o}
        assert len(busy) == 3, "all three members got partitions: %s" % owners

        # Phase 2: kill one member; its partitions move to the other two within the session
        # timeout, and every new message is consumed (at least once: the killed member's
        # uncommitted tail may be read again).
        victim = members[0]
        victim.stop(signal.SIGKILL)
        survivors = members[1:]
        batch2 = ["two-%05d" % i for i in range(1200)]
        produce(broker, topic, batch2)
        wait_until(lambda: set(v for _, _, _, v in values(survivors, "two-")) >= set(batch2),
                   60, "batch 2 consumed by the two survivors")
        parts = {p for _, p, _, _ in values(survivors, "two-")}
        assert parts == set(range(PARTITIONS)), "the survivors own every partition: %s" % parts

        # Phase 3: stop the survivors cleanly (they commit), produce more, start one member:
        # it resumes from the committed offsets and reads only the new messages.
        for m in survivors:
            m.stop()
        batch3 = ["three-%05d" % i for i in range(600)]
        produce(broker, topic, batch3)
        late = Member(broker, topic, tmp_path, "late")
        members.append(late)
        wait_until(lambda: len(values([late], "three-")) >= len(batch3), 60,
                   "the restarted member read batch 3")
        old = [v for _, _, v in late.lines() if not v.startswith("three-")]
        assert old == [], "resumed from committed offsets, yet re-read %d old messages" % len(old)
        assert sorted(v for _, _, _, v in values([late], "three-")) == sorted(batch3)
    finally:
        for m in members:
            m.stop()



class ScriptMember:
    """A group_member.py process (kafka-python or confluent-kafka)."""

    def __init__(self, python, lib, broker, topic, group, workdir, name):
        self.out_path = workdir / ("%s.out" % name)
        self.stop_path = workdir / ("%s.stop" % name)
        self.err = open(workdir / ("%s.err" % name), "wb")
        self.proc = subprocess.Popen(
            [str(python), str(CLIENTS / "group_member.py"), "--lib", lib,
             "--bootstrap", broker.bootstrap, "--topic", topic, "--group", group,
             "--out", str(self.out_path), "--stop", str(self.stop_path)],
            stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL)

    def lines(self):
        if not self.out_path.exists():
            return []
        text = self.out_path.read_text(errors="replace")
        return [tuple(line.split(":", 2)) for line in text.splitlines() if line.count(":") >= 2]

    def stop(self):
        self.stop_path.touch()
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=10)
        self.err.close()
        return self.proc.returncode, out


@pytest.mark.parametrize("client", ["kafka-python-latest", "kafka-python-2.0.2", "confluent"])
def test_group_of_three_shares_and_resumes(client, broker_factory, tmp_path, venv_latest,
                                           venv_kp202):
    python = venv_kp202 if client == "kafka-python-2.0.2" else venv_latest
    lib = "confluent" if client == "confluent" else "kafka-python"
    broker = broker_factory("--num-partitions", str(PARTITIONS),
                            "--group-initial-rebalance-delay-ms", "500",
                            "--group-min-session-timeout-ms", "1000")
    topic, group = "shared", "grp-" + client
    produce(broker, topic, ["warmup"])
    members = [ScriptMember(python, lib, broker, topic, group, tmp_path, "%s-%d" % (client, i))
               for i in range(3)]
    try:
        wait_until(lambda: sum(len(m.lines()) for m in members) >= 1, 60, "warm-up consumed")
        batch1 = ["a-%05d" % i for i in range(3000)]
        produce(broker, topic, batch1)

        def consumed(ms, prefix):
            return [(m, int(p), v) for m in ms for p, _, v in m.lines() if v.startswith(prefix)]

        wait_until(lambda: len(consumed(members, "a-")) >= len(batch1), 90, "batch 1 consumed")
        got = consumed(members, "a-")
        assert sorted(v for _, _, v in got) == sorted(batch1), "each message exactly once"
        owners = {}
        for m, p, _ in got:
            owners.setdefault(p, set()).add(m)
        assert all(len(o) == 1 for o in owners.values()), "a partition read by two members"
        assert len({m for o in owners.values() for m in o}) == 3, "all three got partitions"
        for m in members:
            code, _ = m.stop()
            assert code == 0, "member exited with %s" % code
        # Committed offsets survive: a new member reads only what came after.
        batch2 = ["b-%05d" % i for i in range(500)]
        produce(broker, topic, batch2)
        late = ScriptMember(python, lib, broker, topic, group, tmp_path, "%s-late" % client)
        members.append(late)
        wait_until(lambda: len(consumed([late], "b-")) >= len(batch2), 60, "batch 2 consumed")
        assert sorted(v for _, _, v in consumed([late], "b-")) == sorted(batch2)
        assert consumed([late], "a-") == [], "re-read messages committed before"
    finally:
        for m in members:
            if m.proc.poll() is None:
                m.stop()


def test_committed_offsets_survive_kill9_with_a_live_group(broker_factory, tmp_path, venv_latest):
    """A group commits while running; the broker is killed with -9 under it and restarted.
    The member rejoins by itself and goes on from its committed offsets; a member started
    later in the same group re-reads nothing that was committed."""
    broker = broker_factory("--num-partitions", "3", "--group-initial-rebalance-delay-ms", "200",
                            "--group-min-session-timeout-ms", "1000")
    topic, group = "survivor", "grp-kill9"
    produce(broker, topic, ["warmup"])
    m = ScriptMember(venv_latest, "confluent", broker, topic, group, tmp_path, "live")
    members = [m]
    try:
        before = ["x-%04d" % i for i in range(500)]
        produce(broker, topic, before)

        def got(member, prefix):
            return [v for _, _, v in member.lines() if v.startswith(prefix)]

        wait_until(lambda: len(got(m, "x-")) >= len(before), 60, "batch before the kill consumed")
        broker.restart()  # kill -9, then start on the same ports and data
        after = ["y-%04d" % i for i in range(500)]
        produce(broker, topic, after)
        wait_until(lambda: set(got(m, "y-")) >= set(after), 90,
                   "the live member consumed the batch produced after the restart")
        code, _ = m.stop()
        assert code == 0
        # Everything up to here was committed: a new member starts after it.
        last = ["z-%04d" % i for i in range(100)]
        produce(broker, topic, last)
        late = ScriptMember(venv_latest, "confluent", broker, topic, group, tmp_path, "late")
        members.append(late)
        wait_until(lambda: len(got(late, "z-")) >= len(last), 60, "the late member read the last batch")
        reread = [v for _, _, v in late.lines() if not v.startswith("z-")]
        assert reread == [], "re-read %d committed messages, e.g. %s" % (len(reread), reread[:5])
        assert sorted(got(late, "z-")) == sorted(last)
    finally:
        for x in members:
            if x.proc.poll() is None:
                x.stop()
