"""Apache Kafka's kafka-metadata-quorum (4.1.1) against a three-broker cluster
(e2e/local-cluster, every broker a voter): `describe --status` and `describe --replication`
(plain and --human-readable), asked of each broker in turn. A broker that does not lead the
controller quorum forwards DescribeQuorum to the one that does, so every answer names the same
leader and the three voters, each with a log end offset."""

import re

import pytest

from helpers import wait_until
from kafka_tools import missing, run_tool
from test_cluster import FAST, cluster_factory  # noqa: F401 (the fixture)

TOOL = "org.apache.kafka.tools.MetadataQuorumCommand"


def status(addr):
    r = run_tool(TOOL, addr, ["describe", "--status"])
    assert r.rc == 0, r
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", r.stdout, re.M))
    return fields, r


def replication(addr, *extra):
    """Rows of the --replication table as dicts (NodeId, LogEndOffset, Lag, Status, ...)."""
    r = run_tool(TOOL, addr, ["describe", "--replication", *extra])
    assert r.rc == 0, r
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    header = lines[0].split()
    assert header[:3] == ["NodeId", "DirectoryId", "LogEndOffset"], r
    rows = []
    for line in lines[1:]:
        # "3 ms ago" spans three words with --human-readable: split on 2+ spaces or tabs.
        cells = [c for c in re.split(r"\t|\s{2,}", line.strip()) if c]
        assert len(cells) == len(header), (line, r)
        rows.append(dict(zip(header, cells)))
    return rows, r


def test_metadata_quorum_describe_status_and_replication(cluster_factory):
    why = missing()
    if why:
        pytest.fail(why)
    cl = cluster_factory(3, FAST)
    leader = wait_until(cl.quorum_leader, 30, "a controller quorum leader")

    for b in range(1, 4):
        fields, r = status(cl.addr(b))
        assert int(fields["LeaderId"]) == leader, r
        assert int(fields["LeaderEpoch"]) >= 1, r
        assert int(fields["HighWatermark"]) > 0, r
        voters = sorted(int(v) for v in re.findall(r'"id": (\d+)', fields["CurrentVoters"]))
        assert voters == [1, 2, 3], r
        assert "CONTROLLER://" in fields["CurrentVoters"], r
        assert fields["CurrentObservers"] == "[]", r
        assert fields["ClusterId"], r

    def replicated():
        rows, r = replication(cl.addr(1))
        return (rows, r) if all(int(row["LogEndOffset"]) >= 0 for row in rows) else None

    rows, r = wait_until(replicated, 30, "every voter's log end offset")
    for b in range(1, 4):
        rows, r = replication(cl.addr(b))
        by_id = {int(row["NodeId"]): row for row in rows}
        assert sorted(by_id) == [1, 2, 3], r
        assert by_id[leader]["Status"] == "Leader", r
        assert all(by_id[i]["Status"] == "Follower" for i in by_id if i != leader), r
        for row in rows:
            assert int(row["LastFetchTimestamp"]) > 0, r
            assert int(row["LastCaughtUpTimestamp"]) > 0, r

    # Relative times: Kafka's tool refuses timestamps in the future or before the epoch.
    rows, r = replication(cl.addr(2), "--human-readable")
    assert len(rows) == 3, r
    assert all(row["LastFetchTimestamp"].endswith("ms ago") for row in rows), r
