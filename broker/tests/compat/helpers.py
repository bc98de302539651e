"""Helpers of the compat tests: test data, running client drivers, and round-trip checks."""

import json
import random
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parent / "clients"
_runs = [0]


def wait_until(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns a truthy value; raises TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def recent_ms():
    """A timestamp 10 minutes ago, whole seconds: inside any retention the tests use."""
    return (int(time.time()) - 600) * 1000


def make_records(n, seed, keys=100, ts_base=None, headers=True, nulls=True):
    """n deterministic records: keyed (k0..k<keys-1>), compressible binary values holding their
    sequence number,
    some headers (incl. empty and duplicate names), a few null keys/values, increasing timestamps.
    """
    rnd = random.Random(seed)
    ts_base = ts_base if ts_base is not None else recent_ms()
    out = []
    for i in range(n):
        key = None if (nulls and i % 97 == 13) else b"k%d" % (i % keys)
        size = 20_000 if i % 500 == 7 else rnd.randrange(0, 300)
        # Every byte value occurs, but a third at most is random so that each batch compresses
        # (clients send a batch uncompressed when compression does not make it smaller).
        noise = bytes(rnd.randrange(256) for _ in range(size // 3))
        value = b"seq=%06d;" % i + noise + bytes([i % 256]) * (size - len(noise))
        if nulls and i % 211 == 17:
            value = None
        hdrs = []
        if headers and i % 5 == 0:
            hdrs = [("seq", b"%d" % i), ("bin", bytes([0, 255, i % 256])), ("empty", b"")]
            if i % 15 == 0:
                hdrs += [("dup", b"a"), ("dup", b"b")]
        out.append({"k": key, "v": value, "h": hdrs, "ts": ts_base + i, "p": None})
    return out


def write_records(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({
                "k": None if r["k"] is None else r["k"].hex(),
                "v": None if r["v"] is None else r["v"].hex(),
                "h": [[h[0], h[1].hex()] for h in r["h"]],
                "ts": r["ts"], "p": r["p"]}) + "\n")
    return path


def run_client(python, script, mode, args, workdir, timeout=180):
    """Runs clients/<script> in the given venv python; returns its JSON result."""
    _runs[0] += 1
    stderr_path = Path(workdir) / ("client-%02d-%s-%s.stderr" % (_runs[0], Path(script).stem,
                                                                 mode))
    cmd = [str(python), str(CLIENTS / script), mode] + [str(a) for a in args]
    with open(stderr_path, "wb") as err:
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("client timed out after %ss: %s\n%s" % (timeout, " ".join(cmd),
                                                                tail(stderr_path)),
                        pytrace=False)
    if p.returncode != 0:
        pytest.fail("client exited %d: %s\n%s" % (p.returncode, " ".join(cmd), tail(stderr_path)),
                    pytrace=False)
    try:
        return json.loads(p.stdout.decode())
    except ValueError:
        pytest.fail("client printed no JSON: %s\nstdout: %r\n%s"
                    % (" ".join(cmd), p.stdout[-2000:], tail(stderr_path)), pytrace=False)


def tail(path, lines=60):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "--- %s (last %d lines) ---\n%s" % (path, min(lines, len(text)),
                                               "\n".join(text[-lines:]))


def _h(b):
    return None if b is None else b.hex()


def check_acks(sent, produced):
    """Every record acknowledged without error; returns {(p, o): index into sent}."""
    res = produced["results"]
    assert len(res) == len(sent), "driver returned %d results for %d records" % (len(res),
                                                                                 len(sent))
    errs = [(i, r) for i, r in enumerate(res) if "error" in r]
    assert not errs, "%d of %d records not acknowledged; first: %s" % (
        len(errs), len(sent), errs[:5])
    by_pos = {}
    for i, r in enumerate(res):
        pos = (r["p"], r["o"])
        assert pos not in by_pos, "records %d and %d both acknowledged at %s" % (by_pos[pos], i,
                                                                                 pos)
        by_pos[pos] = i
    return by_pos


def check_roundtrip(sent, produced, consumed, partitions):
    """The consumed records are exactly the acknowledged ones, byte for byte and in order.

    sent: make_records() output; produced: a driver's produce JSON; consumed: its consume JSON.
    """
    by_pos = check_acks(sent, produced)
    assert not consumed["timed_out"], "consumer timed out: got %d of %d records" % (
        len(consumed["records"]), len(sent))
    got = {}
    for r in consumed["records"]:
        pos = (r["p"], r["o"])
        assert pos not in got, "record %s delivered twice to the consumer" % (pos,)
        got[pos] = r
    missing = sorted(set(by_pos) - set(got))
    extra = sorted(set(got) - set(by_pos))
    assert not missing and not extra, (
        "acknowledged but not consumed: %d %s; consumed but never acknowledged: %d %s"
        % (len(missing), missing[:10], len(extra), extra[:10]))
    # Byte-for-byte content.
    for pos, r in sorted(got.items()):
        s = sent[by_pos[pos]]
        assert r["k"] == _h(s["k"]), "key mismatch at %s (record %d)" % (pos, by_pos[pos])
        assert r["v"] == _h(s["v"]), "value mismatch at %s (record %d): got %s... want %s..." % (
            pos, by_pos[pos], (r["v"] or "null")[:40], (_h(s["v"]) or "null")[:40])
        assert r["h"] == [[h[0], h[1].hex()] for h in s["h"]], \
            "headers mismatch at %s: got %s want %s" % (pos, r["h"], s["h"])
        assert r["ts"] == s["ts"], "timestamp mismatch at %s: got %s want %s" % (
            pos, r["ts"], s["ts"])
    per_part = defaultdict(list)
    for (p, o), i in by_pos.items():
        per_part[p].append((o, i))
    assert set(per_part) <= set(range(partitions)), "partitions %s" % sorted(per_part)
    for p, lst in per_part.items():
        lst.sort()
        offs = [o for o, _ in lst]
        assert offs == list(range(len(offs))), \
            "partition %d offsets not contiguous from 0: %s..." % (p, offs[:20])
        idx = [i for _, i in lst]
        assert idx == sorted(idx), "partition %d: send order not kept in offset order" % p
    # End offsets reported by the broker match the record counts.
    for p in range(partitions):
        assert int(consumed["end"][str(p)]) == len(per_part.get(p, [])), \
            "partition %d: end offset %s, records %d" % (p, consumed["end"][str(p)],
                                                         len(per_part.get(p, [])))
        assert int(consumed["beginning"][str(p)]) == 0, "partition %d: log start %s" % (
            p, consumed["beginning"][str(p)])
    # A key always maps to one partition.
    key_parts = defaultdict(set)
    for (p, _o), i in by_pos.items():
        if sent[i]["k"] is not None:
            key_parts[sent[i]["k"]].add(p)
    split = {k: v for k, v in key_parts.items() if len(v) > 1}
    assert not split, "keys spread over several partitions: %s" % list(split.items())[:5]


def timed_records(base, per_partition, partitions):
    """Records pinned to partitions, timestamps base + 1000*j + 100*p (j = offset)."""
    recs = []
    for j in range(per_partition):
        for p in range(partitions):
            recs.append({"k": b"t%d" % j, "v": b"p%d-j%d" % (p, j), "h": [],
                         "ts": base + 1000 * j + 100 * p, "p": p})
    return recs


def expected_for_time(base, per_partition, p, t):
    """Kafka's answer: the first offset whose timestamp >= t, with that timestamp, or None."""
    for j in range(per_partition):
        ts = base + 1000 * j + 100 * p
        if ts >= t:
            return [j, ts]
    return None


def query_times(base, per_partition):
    return [base - 5000, base, base + 1, base + 10_050, base + 1000 * (per_partition - 1) + 100,
            base + 1000 * per_partition + 10_000]


def start_client(python, script, mode, args, workdir):
    """Starts a driver in the background; returns (Popen, stdout path, stderr path)."""
    _runs[0] += 1
    base = Path(workdir) / ("client-%02d-%s-%s" % (_runs[0], Path(script).stem, mode))
    out, err = base.with_suffix(".stdout"), base.with_suffix(".stderr")
    cmd = [str(python), str(CLIENTS / script), mode] + [str(a) for a in args]
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    return proc, out, err


def finish_client(proc, out, err, timeout):
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("background client timed out after %ss\n%s" % (timeout, tail(err)),
                    pytrace=False)
    if proc.returncode != 0:
        pytest.fail("background client exited %d\n%s" % (proc.returncode, tail(err)),
                    pytrace=False)
    try:
        return json.loads(Path(out).read_text())
    except ValueError:
        pytest.fail("background client printed no JSON\n%s" % tail(err), pytrace=False)


def check_acked_durable(sent, produced, consumed, partitions):
    """After a crash during production: every acknowledged record is at its acknowledged
    position byte for byte; anything else in the log is a (retried) copy of a sent record; the
    log has no holes. Returns the number of extra copies. Records must have distinct values."""
    by_pos = check_acks(sent, produced)
    assert not consumed["timed_out"], "consumer timed out: got %d records" % len(
        consumed["records"])
    by_value = {s["v"].hex(): i for i, s in enumerate(sent)}
    got, per_part = {}, defaultdict(list)
    for r in consumed["records"]:
        pos = (r["p"], r["o"])
        assert pos not in got, "record %s delivered twice to the consumer" % (pos,)
        got[pos] = r
        per_part[r["p"]].append(r["o"])
    missing = sorted(set(by_pos) - set(got))
    assert not missing, "%d acknowledged records lost: %s" % (len(missing), missing[:10])
    extra = 0
    for pos, r in got.items():
        i = by_pos.get(pos)
        if i is None:
            extra += 1
            i = by_value.get(r["v"])
            assert i is not None, "record at %s was never sent: %s" % (pos, str(r)[:200])
        s = sent[i]
        assert (r["k"], r["v"], r["h"], r["ts"]) == (
            _h(s["k"]), _h(s["v"]), [[h[0], h[1].hex()] for h in s["h"]], s["ts"]), \
            "content mismatch at %s (record %d)" % (pos, i)
    for p in range(partitions):
        offs = sorted(per_part.get(p, []))
        assert offs == list(range(len(offs))), "partition %d has holes: %s" % (p, offs[:20])
        assert int(consumed["end"][str(p)]) == len(offs), (p, consumed["end"], len(offs))
    return extra


CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def stored_codecs(data_dir, topic):
    """{codec name: batch count} over the topic's segment files. The broker keeps Kafka's layout
    (<topic>-<partition>/<base offset>.log holding RecordBatch v2 bytes as the producer sent
    them), so this shows which compression the client really used after negotiation."""
    seen = defaultdict(int)
    files = sorted(Path(data_dir).glob("%s-*/*.log" % topic))
    assert files, "no segment files for %s under %s" % (topic, data_dir)
    for f in files:
        data = f.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
            if length <= 0 or pos + 12 + length > len(data):
                break  # preallocated or torn tail: not ours to judge here
            magic = data[pos + 16]
            assert magic == 2, "%s@%d: magic %d" % (f, pos, magic)
            attributes = int.from_bytes(data[pos + 21:pos + 23], "big")
            seen[CODECS.get(attributes & 7, "codec%d" % (attributes & 7))] += 1
            pos += 12 + length
    return dict(seen)


def assert_codec(stored, codec):
    """stored: stored_codecs() output. Clients send a batch uncompressed when compression would
    not shrink it (tiny batches), so a few uncompressed batches are allowed; none in codec is
    the sign of a client that turned compression off (e.g. a feature it did not negotiate)."""
    if codec == "none":
        assert set(stored) == {"none"}, "asked for no compression, batches stored: %s" % stored
        return
    assert set(stored) <= {codec, "none"} and stored.get(codec, 0) > 0, \
        "asked for %s, batches stored: %s" % (codec, stored)


def check_from_offset(full, partial, start):
    """partial (consumed from offset start) is exactly full's records at offsets >= start: a
    fetch in the middle of a (compressed) batch must not return earlier or skip later records."""
    assert not partial["timed_out"], "consumer from offset %d timed out" % start
    want = sorted((r["p"], r["o"], r["k"], r["v"]) for r in full["records"] if r["o"] >= start)
    got = [(r["p"], r["o"], r["k"], r["v"]) for r in partial["records"]]
    assert sorted(got) == want, "from offset %d: got %d records, want %d; first got %s" % (
        start, len(got), len(want), [g[:2] for g in sorted(got)[:5]])
    firsts = {}
    for r in partial["records"]:
        firsts.setdefault(r["p"], r["o"])
    assert all(o == start for o in firsts.values()), "first offsets per partition: %s" % firsts
