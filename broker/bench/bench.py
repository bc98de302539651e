#!/usr/bin/env python3
"""Samsa vs Apache Kafka, side by side in one run (started by broker/bench/run.sh).

Owns: starting each broker pinned to the broker core, running the same clients against both
(Kafka's own Java perf tools and load.py on librdkafka, pinned to the client core), measuring
the machine's limits (fio/dd, iperf3), and writing target/bench/{results.json,details.json,
table.txt}. Every target is loopback; every load is bounded in count and in time. Targets are
reported, never asserted: the exit status says only whether the harness itself worked.
"""

import argparse
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20
RECORD_SIZE = 1024
PARTITIONS = 8

JAVA_BROKER_OPTS = [  # what kafka-server-start.sh uses by default
    "-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]
JAVA_TOOL_OPTS = [  # what kafka-producer-perf-test.sh / kafka-run-class.sh use by default
    "-Xmx512M", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]
# Producer settings given to ProducerPerformance for both brokers (load.py uses the same), plus
# linger.ms from --linger-ms.
JAVA_PRODUCER_PROPS = ["enable.idempotence=false", "compression.type=none", "batch.size=65536"]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- raw Kafka protocol probe (cold start) -------------------------------------------------------


def metadata_ok(port, timeout=0.5):
    """True when a Metadata v1 request for no topics lists at least one broker."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            client = b"samsa-bench"
            body = struct.pack(">hhih", 3, 1, 1, len(client)) + client + struct.pack(">i", 0)
            s.sendall(struct.pack(">i", len(body)) + body)
            head = b""
            while len(head) < 12:
                chunk = s.recv(12 - len(head))
                if not chunk:
                    return False
                head += chunk
            _size, corr, n_brokers = struct.unpack(">iii", head)
            return corr == 1 and n_brokers >= 1
    except OSError:
        return False


# --- process helpers -----------------------------------------------------------------------------


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in MiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def proc_cpu_seconds(pid):
    """User + system CPU seconds of every thread of pid so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def stop_group(p):
    """SIGTERM, then SIGKILL after 10 s, to the process group of a child we started."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    except ProcessLookupError:
        pass


def run_cmd(cmd, timeout, out_path, env=None):
    """Runs cmd in its own process group; on timeout kills that group. Returns (rc, output)."""
    log(f"$ {' '.join(cmd)}")
    with open(out_path, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"time cap of {timeout:.0f}s reached: stopping pid {p.pid}")
            stop_group(p)
            rc = "timeout"
        except BaseException:  # Ctrl-C or SIGTERM: leave no client behind
            stop_group(p)
            raise
    with open(out_path, errors="replace") as f:
        return rc, f.read()


# --- brokers -------------------------------------------------------------------------------------


class Broker:
    name = "?"

    def __init__(self, cfg, mode):
        self.cfg = cfg
        self.mode = mode  # "default" or "durable"
        self.proc = None
        self.logf = None
        self.port = free_port()
        self.work = os.path.join(cfg.work, f"{self.name}-{mode}")
        self.log_path = os.path.join(cfg.out, "logs", f"{self.name}-{mode}.log")
        self.cold_start_ms = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def prepare(self):
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)

    def command(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def start(self, timeout=120.0):
        self.prepare()
        cmd = ["taskset", "-c", self.cfg.broker_cpu] + self.command()
        log(f"starting {self.name} ({self.mode}) on {self.bootstrap}: {' '.join(cmd)}")
        self.logf = open(self.log_path, "w")
        # Write back what earlier phases left dirty (their data, the removed directories), so
        # that neither broker's start-up fsyncs wait on someone else's writeback.
        os.sync()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env(), cwd=self.work, start_new_session=True)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if metadata_ok(self.port):
                self.cold_start_ms = (time.monotonic() - t0) * 1000.0
                log(f"{self.name} ({self.mode}) ready in {self.cold_start_ms:.0f} ms, pid {self.proc.pid}")
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"{self.name} ({self.mode}) did not start; see {self.log_path}")

    def rss(self):
        return proc_status(self.proc.pid, "VmRSS")

    def peak_rss(self):
        return proc_status(self.proc.pid, "VmHWM")

    def cpu(self):
        return proc_cpu_seconds(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            log(f"stopping {self.name} ({self.mode}), pid {self.proc.pid}")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in 60 s: SIGKILL pid {self.proc.pid}")
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.logf:
            self.logf.close()


class Samsa(Broker):
    name = "samsa"

    def command(self):
        cmd = [self.cfg.samsa_bin, "--listen", self.bootstrap,
               "--advertised-listener", self.bootstrap,
               "--data-dir", os.path.join(self.work, "data"),
               "--metrics-listen", f"127.0.0.1:{free_port()}",
               "--num-partitions", str(PARTITIONS), "--log", "warn"]
        if self.mode == "durable":
            cmd += ["--log-flush-interval-messages", "1"]
        return cmd + list(self.cfg.samsa_arg)

    def env(self):
        # Flags only: a SAMSA_* variable in the caller's shell must not change the broker.
        return {k: v for k, v in os.environ.items() if not k.startswith("SAMSA_")}


class Kafka(Broker):
    name = "kafka"

    def prepare(self):
        super().prepare()
        self.controller_port = free_port()
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": os.path.join(self.work, "data"),
            "num.partitions": str(PARTITIONS),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.mode == "durable":
            props["log.flush.interval.messages"] = "1"
        self.props_path = os.path.join(self.work, "server.properties")
        with open(self.props_path, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in props.items())
        cluster_id = "-"
        while cluster_id.startswith("-"):  # StorageTool would read "-..." as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        rc, out = run_cmd(
            ["taskset", "-c", self.cfg.broker_cpu, "java", *self.cfg.java_log_opts, "-cp",
             self.cfg.kafka_cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", self.props_path],
            120, os.path.join(self.cfg.out, "logs", f"kafka-{self.mode}-format.log"))
        if rc != 0:
            raise RuntimeError(f"kafka StorageTool format failed ({rc}): {first_problem(out)}")

    def command(self):
        return ["java", *JAVA_BROKER_OPTS, *self.cfg.java_log_opts, "-cp", self.cfg.kafka_cp,
                "kafka.Kafka", self.props_path]


# --- clients -------------------------------------------------------------------------------------


class Clients:
    def __init__(self, cfg, broker):
        self.cfg = cfg
        self.b = broker
        self.usage = {}  # workload -> broker CPU seconds and wall seconds while its client ran

    def run(self, name, cmd, timeout):
        cpu0, t0 = self.b.cpu(), time.monotonic()
        rc, out = run_cmd(cmd, timeout, self.raw(name))
        cpu1, wall = self.b.cpu(), time.monotonic() - t0
        if cpu0 is not None and cpu1 is not None:
            self.usage[name] = {"broker_cpu_s": cpu1 - cpu0, "wall_s": wall,
                                "broker_core_busy": (cpu1 - cpu0) / wall}
        return rc, out

    def raw(self, name):
        return os.path.join(self.cfg.out, "raw", f"{self.b.name}-{self.b.mode}-{name}.txt")

    def create_topic(self, topic):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.b.bootstrap})
        fut = admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=30)
        fut[topic].result(timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            t = admin.list_topics(topic, timeout=10).topics.get(topic)
            if t and t.error is None and len(t.partitions) == PARTITIONS and all(
                    p.leader >= 0 for p in t.partitions.values()):
                return
            time.sleep(0.05)
        raise RuntimeError(f"topic {topic}: partitions without leader after 60 s")

    def java(self, name, main_class, args, timeout):
        cmd = ["taskset", "-c", self.cfg.client_cpu, "java", *JAVA_TOOL_OPTS,
               *self.cfg.java_log_opts, "-cp", self.cfg.kafka_cp, main_class, *args]
        return self.run(name, cmd, timeout)

    def load(self, name, mode, args, timeout):
        cmd = ["taskset", "-c", self.cfg.client_cpu, sys.executable,
               os.path.join(HERE, "load.py"), mode, "--bootstrap", self.b.bootstrap,
               "--linger-ms", str(self.cfg.linger_ms), *args]
        rc, out = self.run(name, cmd, timeout)
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                try:
                    res = json.loads(line)
                except ValueError:
                    break
                res["rc"] = rc
                return res
        return {"error": f"load.py {mode} gave no result (rc {rc}): {tail(out)}", "rc": rc}

    # ProducerPerformance: final summary, or the 5-second window lines when the cap cut it short.
    PP_FINAL = re.compile(
        r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
        r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th")
    PP_WINDOW = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", re.M)

    def producer_perf(self, name, topic, acks, records, throughput, timeout):
        args = ["--topic", topic, "--num-records", str(records), "--payload-file",
                self.cfg.payload_file, "--throughput", str(throughput), "--producer-props",
                f"bootstrap.servers={self.b.bootstrap}", f"acks={acks}", *JAVA_PRODUCER_PROPS,
                f"linger.ms={self.cfg.linger_ms}"]
        rc, out = self.java(name, "org.apache.kafka.tools.ProducerPerformance", args, timeout)
        m = self.PP_FINAL.search(out)
        if m:
            return {"records": int(m[1]), "records_per_s": float(m[2]), "mb_per_s": float(m[3]),
                    "avg_ms": float(m[4]), "max_ms": float(m[5]), "p50_ms": float(m[6]),
                    "p95_ms": float(m[7]), "p99_ms": float(m[8]), "p999_ms": float(m[9]),
                    "rc": rc, "complete": True}
        windows = self.PP_WINDOW.findall(out)
        if windows:  # each window line covers ~5 s: average of the window rates
            n = sum(int(w[0]) for w in windows)
            secs = sum(int(w[0]) / float(w[1]) for w in windows if float(w[1]) > 0)
            return {"records": n, "records_per_s": n / secs, "mb_per_s": n * RECORD_SIZE / secs / MIB,
                    "rc": rc, "complete": False}
        return {"error": f"ProducerPerformance (rc {rc}): {tail(out)}", "rc": rc}

    def consumer_perf(self, name, topic, records, timeout):
        args = ["--bootstrap-server", self.b.bootstrap, "--topic", topic, "--messages",
                str(records), "--timeout", "10000"]
        rc, out = self.java(name, "org.apache.kafka.tools.ConsumerPerformance", args, timeout)
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 10 and re.match(r"\d{4}-", parts[0]):
                res = {"mb": float(parts[2]), "mb_per_s_incl_join": float(parts[3]),
                       "records": int(parts[4]), "join_ms": int(parts[6]),
                       "fetch_ms": int(parts[7]), "mb_per_s": float(parts[8]), "rc": rc}
                if res["records"] == 0:
                    res["error"] = f"consumed nothing (rc {rc}): {first_problem(out)}"
                return res
        return {"error": f"ConsumerPerformance (rc {rc}): {first_problem(out)}", "rc": rc}

    def end_to_end(self, name, topic, messages, timeout):
        props = os.path.join(self.cfg.work, "e2e.properties")
        with open(props, "w") as f:
            f.write("enable.idempotence=false\ncompression.type=none\n")
        args = [self.b.bootstrap, topic, str(messages), "1", str(RECORD_SIZE), props]
        rc, out = self.java(name, "org.apache.kafka.tools.EndToEndLatency", args, timeout)
        avg = re.search(r"Avg latency: ([\d.]+) ms", out)
        pct = re.search(r"Percentiles: 50th = (\d+), 99th = (\d+), 99\.9th = (\d+)", out)
        if avg and pct:
            res = {"avg_ms": float(avg[1]), "p50_ms": int(pct[1]), "p99_ms": int(pct[2]),
                   "p999_ms": int(pct[3]), "rc": rc}
            if rc != 0:  # e.g. the consumer's close() needing a group coordinator
                res["warning"] = f"the tool exited {rc} after printing its results: {first_problem(out)}"
            return res
        return {"error": f"EndToEndLatency (rc {rc}): {first_problem(out)}", "rc": rc}


def tail(text, n=600):
    text = text.strip()
    return text[-n:].replace("\n", " | ")


def first_problem(text):
    """The first error line of a tool's output (what a human needs), else its tail."""
    for line in text.splitlines():
        if re.search(r"Exception|ERROR|WARNING: Exiting|error:", line):
            return line.strip()[:600]
    return tail(text)


# --- machine limits ------------------------------------------------------------------------------


def disk_limit(cfg, bs_kib):
    """Sequential writes of bs_kib KiB, each followed by fdatasync, on the data directory's disk."""
    path = os.path.join(cfg.work, "disk-probe")
    os.makedirs(path, exist_ok=True)
    size_mb = cfg.disk_probe_mb
    try:
        if shutil.which("fio"):
            rc, out = run_cmd(
                ["taskset", "-c", cfg.broker_cpu, "fio", "--name=seq-fdatasync",
                 f"--directory={path}", "--rw=write", f"--bs={bs_kib}k", f"--size={size_mb}m",
                 "--ioengine=sync", "--fdatasync=1", "--end_fsync=1", "--runtime=30",
                 "--output-format=json"],
                90, os.path.join(cfg.out, "raw", f"limits-fio-{bs_kib}k.json"))
            if rc == 0:
                job = json.loads(out[out.index("{"):])["jobs"][0]["write"]
                return {"tool": "fio", "bs_kib": bs_kib, "mb_per_s": job["bw_bytes"] / MIB,
                        "iops": job["iops"]}
        count = max(1, size_mb * 1024 // bs_kib)
        rc, out = run_cmd(
            ["taskset", "-c", cfg.broker_cpu, "dd", "if=/dev/zero", f"of={path}/dd.bin",
             f"bs={bs_kib}k", f"count={count}", "oflag=dsync"],
            90, os.path.join(cfg.out, "raw", f"limits-dd-{bs_kib}k.txt"))
        m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", out)
        if rc == 0 and m:
            mbps = int(m[1]) / float(m[2]) / MIB
            return {"tool": "dd oflag=dsync", "bs_kib": bs_kib, "mb_per_s": mbps,
                    "iops": mbps * 1024 / bs_kib}
        return {"error": f"disk probe failed: {tail(out)}"}
    finally:
        shutil.rmtree(path, ignore_errors=True)


def loopback_limit(cfg):
    if not shutil.which("iperf3"):
        return {"error": "iperf3 not installed"}
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", cfg.broker_cpu, "iperf3", "-s", "-1", "-B",
                               "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.5)
        rc, out = run_cmd(["taskset", "-c", cfg.client_cpu, "iperf3", "-c", "127.0.0.1", "-p",
                           str(port), "-t", str(cfg.iperf_seconds), "-J"],
                          cfg.iperf_seconds + 30, os.path.join(cfg.out, "raw", "limits-iperf3.json"))
        if rc == 0:
            bps = json.loads(out[out.index("{"):])["end"]["sum_received"]["bits_per_second"]
            return {"tool": "iperf3", "gbit_per_s": bps / 1e9, "mb_per_s": bps / 8 / MIB}
        return {"error": f"iperf3 rc {rc}: {tail(out)}"}
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(10)


# --- the run -------------------------------------------------------------------------------------


def write_payloads(path, n=1000, seed=20240601):
    """1 KiB payloads, one a line (ProducerPerformance's format): 512 random base64 characters
    then 512 constant ones. Seeded, so both brokers see the same bytes."""
    rng = random.Random(seed)
    filler = (b"samsa-bench-" * 50)[:512]
    with open(path, "wb") as f:
        for _ in range(n):
            f.write(base64.b64encode(rng.randbytes(384)) + filler + b"\n")


def drop_caches(cfg):
    if cfg.drop_caches:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")


def phase_default(cfg, broker_cls, kafka_ref):
    """Workloads a-d (and resources) against one broker started in default (page cache) mode."""
    r = {"mode": "default"}
    b = broker_cls(cfg, "default")
    c = Clients(cfg, b)
    try:
        b.start()
        r["cold_start_ms"] = b.cold_start_ms
        time.sleep(cfg.idle_settle)
        r["idle_rss_mib"] = b.rss()
        log(f"{b.name}: idle RSS {r['idle_rss_mib']:.1f} MiB")
        produce_records = cfg.log_mb * MIB // RECORD_SIZE
        cap = cfg.max_seconds

        c.create_topic("warmup")
        r["warmup"] = c.load("warmup", "produce", [
            "--topic", "warmup", "--payload-file", cfg.payload_file, "--acks", "1",
            "--count", str(produce_records), "--max-seconds", str(cfg.warmup)], cfg.warmup + 60)

        # (a) max produce throughput, acks=1: Java fills the log that (d) reads back.
        for t in ("bench-a-java", "bench-a-rdk", "bench-b-java", "bench-b-rdk",
                  "bench-c-rdk", "bench-c-java", "bench-c-e2e"):
            c.create_topic(t)
        cpu0 = b.cpu()
        r["a_java"] = c.producer_perf("a-java", "bench-a-java", "1", produce_records, -1, cap + 60)
        cpu1 = b.cpu()
        if "records" in r["a_java"]:
            gib = r["a_java"]["records"] * RECORD_SIZE / (1 << 30)
            r["cpu_s_per_gib_produced"] = (cpu1 - cpu0) / gib if gib else None
        r["a_rdk"] = c.load("a-rdk", "produce", [
            "--topic", "bench-a-rdk", "--payload-file", cfg.payload_file, "--acks", "1",
            "--count", str(produce_records), "--max-seconds", str(cap)], cap + 60)
        # (b) acks=all
        r["b_java"] = c.producer_perf("b-java", "bench-b-java", "all", produce_records, -1, cap + 60)
        r["b_rdk"] = c.load("b-rdk", "produce", [
            "--topic", "bench-b-rdk", "--payload-file", cfg.payload_file, "--acks", "all",
            "--count", str(produce_records), "--max-seconds", str(cap)], cap + 60)

        # (c) fixed rate at half of Kafka's peak with the same client, end-to-end latency.
        rate_rdk = cfg.rate or (kafka_ref or r).get("a_rdk", {}).get("records_per_s", 0) / 2
        rate_java = cfg.java_rate or (kafka_ref or r).get("a_java", {}).get("records_per_s", 0) / 2
        rate_rdk = max(100, int(rate_rdk or 1000))
        rate_java = max(100, int(rate_java or 1000))
        r["c_rate_rdk"], r["c_rate_java"] = rate_rdk, rate_java
        r["c_rdk"] = c.load("c-rdk", "latency", [
            "--topic", "bench-c-rdk", "--payload-file", cfg.payload_file, "--acks", "1",
            "--rate", str(rate_rdk), "--seconds", str(cfg.latency_seconds),
            "--warmup", str(cfg.warmup)], cfg.latency_seconds + cfg.warmup + 180)
        r["c_java"] = c.producer_perf("c-java", "bench-c-java", "1",
                                      int(rate_java * cfg.latency_seconds), rate_java,
                                      cfg.latency_seconds * 2 + 60)
        r["c_e2e"] = c.end_to_end("c-e2e", "bench-c-e2e", cfg.e2e_messages, cap + 60)

        # (d) consume the (a) log from its start.
        drop_caches(cfg)
        cpu0 = b.cpu()
        r["d_rdk"] = c.load("d-rdk", "consume", ["--topic", "bench-a-java",
                                                 "--max-seconds", str(cap)], cap + 60)
        cpu1 = b.cpu()
        if r["d_rdk"].get("bytes"):
            r["cpu_s_per_gib_consumed"] = (cpu1 - cpu0) / (r["d_rdk"]["bytes"] / (1 << 30))
        drop_caches(cfg)
        r["d_java"] = c.consumer_perf("d-java", "bench-a-java",
                                      r["a_java"].get("records", produce_records),
                                      min(cap, 120) + 60)
        r["peak_rss_mib"] = b.peak_rss()
        r["cpu_s_total"] = b.cpu()
        r["alive_at_end"] = b.alive()
    finally:
        r["broker_usage"] = c.usage
        b.stop()
        if not cfg.keep_data:
            shutil.rmtree(b.work, ignore_errors=True)
    return r


def phase_durable(cfg, broker_cls):
    """Workload e: fsync per batch before acknowledging, on a freshly started broker."""
    r = {"mode": "durable"}
    b = broker_cls(cfg, "durable")
    c = Clients(cfg, b)
    try:
        b.start()
        r["cold_start_ms"] = b.cold_start_ms
        records = max(1000, cfg.log_mb * MIB // RECORD_SIZE // 4)
        cap = cfg.max_seconds
        for t in ("warmup", "bench-e-java", "bench-e-rdk"):
            c.create_topic(t)
        r["warmup"] = c.load("warmup", "produce", [
            "--topic", "warmup", "--payload-file", cfg.payload_file, "--acks", "1",
            "--count", str(records), "--max-seconds", str(min(cfg.warmup, 5))], cfg.warmup + 60)
        r["e_java"] = c.producer_perf("e-java", "bench-e-java", "all", records, -1, cap + 60)
        r["e_rdk"] = c.load("e-rdk", "produce", [
            "--topic", "bench-e-rdk", "--payload-file", cfg.payload_file, "--acks", "all",
            "--count", str(records), "--max-seconds", str(cap)], cap + 60)
        r["peak_rss_mib"] = b.peak_rss()
    finally:
        r["broker_usage"] = c.usage
        b.stop()
        if not cfg.keep_data:
            shutil.rmtree(b.work, ignore_errors=True)
    return r


def guarded(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # a broker that cannot start must not hide the other one's results
        log(f"{fn.__name__} failed: {e}")
        return {"error": str(e)}


# --- report --------------------------------------------------------------------------------------

ROWS = [
    # (key path, workload label, unit, higher is better)
    (("default", "a_java", "mb_per_s"), "a. produce acks=1, max (Java ProducerPerformance)", "MiB/s", True),
    (("default", "a_rdk", "mb_per_s"), "a. produce acks=1, max (librdkafka)", "MiB/s", True),
    (("default", "b_java", "mb_per_s"), "b. produce acks=all, max (Java ProducerPerformance)", "MiB/s", True),
    (("default", "b_rdk", "mb_per_s"), "b. produce acks=all, max (librdkafka)", "MiB/s", True),
    (("default", "c_rdk", "achieved_rate"), "c. fixed rate achieved (librdkafka)", "msg/s", True),
    (("default", "c_rdk", "p50_ms"), "c. end-to-end latency p50 (librdkafka)", "ms", False),
    (("default", "c_rdk", "p99_ms"), "c. end-to-end latency p99 (librdkafka)", "ms", False),
    (("default", "c_rdk", "p999_ms"), "c. end-to-end latency p99.9 (librdkafka)", "ms", False),
    (("default", "c_java", "p50_ms"), "c. produce-ack latency p50 (Java ProducerPerformance)", "ms", False),
    (("default", "c_java", "p99_ms"), "c. produce-ack latency p99 (Java ProducerPerformance)", "ms", False),
    (("default", "c_java", "p999_ms"), "c. produce-ack latency p99.9 (Java ProducerPerformance)", "ms", False),
    (("default", "c_e2e", "avg_ms"), "c. serial round trip avg (Java EndToEndLatency)", "ms", False),
    (("default", "c_e2e", "p99_ms"), "c. serial round trip p99 (Java EndToEndLatency)", "ms", False),
    (("default", "d_rdk", "mb_per_s"), "d. consume from start (librdkafka, assign)", "MiB/s", True),
    (("default", "d_java", "mb_per_s"), "d. consume from start (Java ConsumerPerformance, group)", "MiB/s", True),
    (("durable", "e_java", "mb_per_s"), "e. durable produce acks=all (Java ProducerPerformance)", "MiB/s", True),
    (("durable", "e_rdk", "mb_per_s"), "e. durable produce acks=all (librdkafka)", "MiB/s", True),
    (("default", "idle_rss_mib"), "idle RSS", "MiB", False),
    (("default", "peak_rss_mib"), "peak RSS (workloads a-d)", "MiB", False),
    (("default", "cold_start_ms"), "cold start (spawn to Metadata answered)", "ms", False),
    (("default", "cpu_s_per_gib_produced"), "broker CPU per GiB produced (a, Java)", "CPU s/GiB", False),
    (("default", "cpu_s_per_gib_consumed"), "broker CPU per GiB consumed (d, librdkafka)", "CPU s/GiB", False),
]


def dig(d, path):
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d if isinstance(d, (int, float)) and not isinstance(d, bool) else None


def failure_of(who, d, path, label):
    """The note for a missing figure: the phase's error once for all its rows, else the
    workload's own error (None when nothing was recorded)."""
    phase = d.get(path[0]) if isinstance(d, dict) else None
    if isinstance(phase, dict) and phase.get("error"):
        return f"{who}: {path[0]} mode did not run: {phase['error']}"
    node = dig_node(d, path[:2]) if len(path) == 3 else None
    if node and node.get("error"):
        return f"{label}: {who}: {node['error']}"
    return None


def build_rows(res):
    rows, notes = [], []
    for path, label, unit, higher in ROWS:
        s, k = dig(res.get("samsa", {}), path), dig(res.get("kafka", {}), path)
        ratio = None
        if s is not None and k is not None and s > 0 and k > 0:
            ratio = s / k if higher else k / s
        rows.append({"workload": label, "unit": unit, "samsa": rnd(s), "kafka": rnd(k),
                     "ratio": rnd(ratio)})
        for who in ("samsa", "kafka"):
            if (s if who == "samsa" else k) is None:
                why = failure_of(who, res.get(who, {}), path, label)
                if why:
                    notes.append(why)
            elif len(path) == 3:
                warn = (dig_node(res.get(who, {}), path[:2]) or {}).get("warning")
                if warn:
                    tool = label.rsplit("(", 1)[-1].rstrip(")")
                    notes.append(f"{tool} on {who}: measured, but {warn}")
    return rows, list(dict.fromkeys(notes))


def dig_node(d, path):
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d if isinstance(d, dict) else None


def rnd(v):
    return None if v is None else float(f"{v:.4g}") if abs(v) < 1000 else round(v, 1)


def fmtx(v):
    return "n/a" if v is None else f"{fmt(v)}x"


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def render(rows, notes, res, cfg):
    out = []
    w = max(len(r["workload"]) for r in rows)
    head = f"{'workload':<{w}}  {'Samsa':>10}  {'Kafka':>10}  {'ratio':>7}  unit"
    out += [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "n/a"
        out.append(f"{r['workload']:<{w}}  {fmt(r['samsa']):>10}  {fmt(r['kafka']):>10}  "
                   f"{ratio:>7}  {r['unit']}")
    out.append("ratio > 1: Samsa better (throughput samsa/kafka; latency, RSS, time, CPU kafka/samsa)")
    ref = res.get("kafka", {}).get("default", {})
    if not ref.get("c_rate_rdk"):
        ref = res.get("samsa", {}).get("default", {})
    if ref.get("c_rate_rdk"):
        out.append(f"c. fixed rates: librdkafka {ref['c_rate_rdk']:,} msg/s, Java {ref['c_rate_java']:,} msg/s "
                   f"(half of Kafka's (a) peak with the same client, 1 KiB each)")
    busy = []
    for phase, name in (("default", "a-java"), ("default", "a-rdk"), ("default", "b-java"),
                        ("default", "b-rdk"), ("default", "d-rdk"), ("durable", "e-java"),
                        ("durable", "e-rdk")):
        pair = [dig(res.get(who, {}), (phase, "broker_usage", name, "broker_core_busy"))
                for who in ("samsa", "kafka")]
        busy.append(f"{name} " + "/".join("n/a" if v is None else f"{v:.0%}" for v in pair))
    out.append("broker core busy while the client ran, Samsa/Kafka (far below 100% on both: the "
               "client was the limit):")
    out.append("  " + ", ".join(busy))
    m = res.get("machine", {})
    out.append("")
    out.append("machine limits (same run):")
    for key, label in (("disk_1m", "disk seq write + fdatasync, 1 MiB"),
                       ("disk_64k", "disk seq write + fdatasync, 64 KiB")):
        d = m.get(key, {})
        out.append(f"  {label:<40} " + (f"{d['mb_per_s']:.1f} MiB/s ({d['iops']:.0f} writes/s, {d['tool']})"
                                         if "mb_per_s" in d else d.get("error", "not measured")))
    d = m.get("loopback", {})
    out.append(f"  {'loopback TCP (iperf3, 1 stream)':<40} " + (
        f"{d['gbit_per_s']:.1f} Gbit/s ({d['mb_per_s']:.0f} MiB/s)" if "gbit_per_s" in d
        else d.get("error", "not measured")))
    for who in ("samsa", "kafka"):
        best = max([v for v in (dig(res.get(who, {}), ("durable", "e_java", "mb_per_s")),
                                dig(res.get(who, {}), ("durable", "e_rdk", "mb_per_s")))
                    if v is not None], default=None)
        for key, label in (("disk_1m", "1 MiB"), ("disk_64k", "64 KiB")):
            lim = m.get(key, {}).get("mb_per_s")
            if best is not None and lim:
                out.append(f"  {who} durable produce {best:.1f} MiB/s = {best / lim:.0%} of the "
                           f"{label} fdatasync disk limit")
    out.append("")
    out.append("targets (reported, not asserted):")
    by = {r["workload"]: r for r in rows}

    def target(ok, text):
        out.append(f"  [{'met' if ok else 'NOT met' if ok is not None else 'n/a'}] {text}")

    a = by["a. produce acks=1, max (Java ProducerPerformance)"]["ratio"]
    a2 = by["a. produce acks=1, max (librdkafka)"]["ratio"]
    target(None if a is None else a >= 1.5, f"produce throughput >= 1.5x Kafka: "
           f"Java {fmtx(a)}, librdkafka {fmtx(a2)}")
    p99 = by["c. end-to-end latency p99 (librdkafka)"]["ratio"]
    target(None if p99 is None else p99 >= 3, f"p99 at the fixed rate <= 1/3 of Kafka's: {fmtx(p99)}")
    idle = by["idle RSS"]["samsa"]
    target(None if idle is None else idle * MIB <= 50e6, f"idle RSS <= 50 MB: {fmt(idle)} MiB")
    cs = by["cold start (spawn to Metadata answered)"]["samsa"]
    target(None if cs is None else cs <= 100, f"cold start <= 100 ms: {fmt(cs)} ms")
    if notes:
        out.append("")
        out.append("notes:")
        out += [f"  - {n}" for n in notes]
    out.append("")
    out.append(f"run: {'quick (smoke figures)' if cfg.quick else 'full'}; log {cfg.log_mb} MiB; "
               f"broker CPU {cfg.broker_cpu}, clients CPU {cfg.client_cpu}; Kafka {cfg.kafka_version}; "
               f"linger.ms {cfg.linger_ms}; "
               f"load average at start {res.get('loadavg_start', 0):.2f}, at end {res.get('loadavg_end', 0):.2f}")
    return "\n".join(out)


def on_sigterm(_signum, _frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samsa-bin", required=True)
    ap.add_argument("--kafka-home", required=True, help="directory with libs/*.jar")
    ap.add_argument("--kafka-version", default="?")
    ap.add_argument("--out", required=True, help="results directory (target/bench)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--log-mb", type=int, default=2048, help="size of the (a)/(d) log in MiB")
    ap.add_argument("--latency-seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10, help="seconds of unmeasured load first")
    ap.add_argument("--max-seconds", type=int, default=300, help="time cap of each workload")
    ap.add_argument("--e2e-messages", type=int, default=10000)
    ap.add_argument("--idle-settle", type=float, default=5.0)
    ap.add_argument("--disk-probe-mb", type=int, default=512)
    ap.add_argument("--iperf-seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=0, help="(c) librdkafka rate; 0: half of Kafka's (a)")
    ap.add_argument("--java-rate", type=int, default=0, help="(c) Java rate; 0: half of Kafka's (a)")
    ap.add_argument("--linger-ms", type=int, default=5,
                    help="linger.ms of every producer, both clients, both brokers (5: the clients' default)")
    ap.add_argument("--brokers", default="kafka,samsa")
    ap.add_argument("--samsa-arg", action="append", default=[],
                    help="extra samsa-broker flag, repeatable (e.g. --samsa-arg=--worker-threads=4)")
    ap.add_argument("--skip-limits", action="store_true")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before (d)")
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--broker-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    cfg = ap.parse_args()
    # make (or anyone) stopping us with SIGTERM gets the same clean-up as Ctrl-C: the finally
    # blocks stop the broker and the running client.
    signal.signal(signal.SIGTERM, on_sigterm)

    cfg.out = os.path.abspath(cfg.out)
    cfg.work = os.path.join(cfg.out, "work")
    for d in ("logs", "raw", "work"):
        shutil.rmtree(os.path.join(cfg.out, d), ignore_errors=True)
        os.makedirs(os.path.join(cfg.out, d))
    cfg.kafka_cp = os.path.join(cfg.kafka_home, "libs", "*")
    cfg.java_log_opts = [f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2.properties')}"]
    cfg.payload_file = os.path.join(cfg.work, "payloads.txt")
    write_payloads(cfg.payload_file)
    free = shutil.disk_usage(cfg.out).free / MIB
    # a-d write 5 logs of --log-mb plus the warm-up and c's two fixed-rate runs (~100k msg/s max)
    need = cfg.log_mb * 6 + 100_000 * (cfg.latency_seconds + cfg.warmup) * RECORD_SIZE / MIB
    if free < need:
        log(f"warning: {free:.0f} MiB free under {cfg.out}; one broker's phase may write ~{need:.0f} MiB")

    res = {"loadavg_start": os.getloadavg()[0], "config": {
        k: v for k, v in vars(cfg).items() if isinstance(v, (int, float, str, bool))}}
    t_start = time.monotonic()
    if not cfg.skip_limits:
        log("machine limits: disk (fdatasync) and loopback TCP")
        res["machine"] = {"disk_1m": disk_limit(cfg, 1024), "disk_64k": disk_limit(cfg, 64),
                          "loopback": loopback_limit(cfg)}
    brokers = [b.strip() for b in cfg.brokers.split(",") if b.strip()]
    classes = {"kafka": Kafka, "samsa": Samsa}
    # Kafka first: (c) runs at half of Kafka's measured peak.
    for name in sorted(brokers, key=lambda n: n != "kafka"):
        log(f"=== {name}: default mode (workloads a-d) ===")
        kafka_ref = res.get("kafka", {}).get("default") if name != "kafka" else None
        res[name] = {"default": guarded(phase_default, cfg, classes[name], kafka_ref)}
        log(f"=== {name}: durable mode (workload e) ===")
        res[name]["durable"] = guarded(phase_durable, cfg, classes[name])
    res["loadavg_end"] = os.getloadavg()[0]
    res["seconds"] = time.monotonic() - t_start

    rows, notes = build_rows(res)
    table = render(rows, notes, res, cfg)
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    with open(os.path.join(cfg.out, "details.json"), "w") as f:
        json.dump(res, f, indent=2, default=str)
    with open(os.path.join(cfg.out, "table.txt"), "w") as f:
        f.write(table + "\n")
    if not cfg.keep_data:
        shutil.rmtree(cfg.work, ignore_errors=True)
    print(table)
    log(f"done in {res['seconds']:.0f} s: {cfg.out}/results.json, details.json, table.txt")
    started = [n for n in brokers if "error" not in res.get(n, {}).get("default", {"error": 1})]
    return 0 if started else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: brokers and clients stopped; partial results were not written")
        sys.exit(130)
