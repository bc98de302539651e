"""Fixtures of the client-compatibility suite: a real samsa-broker process per test.

The broker binary comes from $SAMSA_BROKER_BIN (default <repo>/target/debug/samsa-broker), the
operator's (for `samsa-operator metrics`) from $SAMSA_OPERATOR_BIN (default: next to the broker
binary); the client venvs from $SAMSA_VENV_LATEST / $SAMSA_VENV_KP202 (default: the cache paths
that scripts/test-deps.sh creates). scripts/compat-tests.sh sets them all.

Synchronisation is by polling conditions with bounded timeouts (readiness, port, process exit),
never by bare sleeps.
"""

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import wait_until

REPO = Path(__file__).resolve().parents[3]
CLIENTS = Path(__file__).resolve().parent / "clients"


def _cache_venv(kind):
    cache = Path(os.environ.get("SAMSA_CACHE", Path.home() / ".cache" / "samsa"))
    return cache / ("venv-compat-%s-py%d.%d" % (kind, sys.version_info[0], sys.version_info[1]))


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A bindable loopback port outside the kernel's ephemeral range, so that while the broker
    is down for a restart no client connection can take its port as a local port."""
    lo, hi = _ephemeral_range()
    candidates = [p for p in range(10000, 30000) if not lo <= p <= hi] or [0]
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free loopback port found")


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(port, path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:port/path, or (None, error text)."""
    try:
        with _NO_PROXY.open("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)


def _die_with_parent():
    """In the child before exec: own session, and SIGKILL if pytest dies without tearing down."""
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class BrokerError(Exception):
    pass


class Broker:
    """One samsa-broker process on fixed loopback ports and a data dir that outlive restarts."""

    def __init__(self, binary, workdir, extra_args=(), node_id=1):
        self.binary = str(binary)
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "broker.log"
        self.port = free_port()
        self.metrics_port = free_port()
        while self.metrics_port == self.port:
            self.metrics_port = free_port()
        self.node_id = node_id
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0
        self.killed = []  # pids we killed on purpose

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def command(self):
        # `{port}` in an argument is this broker's Kafka port (e.g. in --listeners, which then
        # replaces --listen).
        extra = [str(a).replace("{port}", str(self.port)) for a in self.extra_args]
        listen = [] if "--listeners" in extra else [
            "--listen", self.bootstrap, "--advertised-listener", self.bootstrap]
        return [self.binary] + listen + [
                "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
                "--data-dir", str(self.data_dir),
                "--node-id", str(self.node_id)] + extra

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMSA_")}
        env["SAMSA_LOG"] = os.environ.get("SAMSA_COMPAT_BROKER_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        return env

    def start(self, timeout=30.0):
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker already running (pid %d)" % self.proc.pid)
        self.starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(("\n=== compat harness: start #%d: %s\n"
                       % (self.starts, " ".join(self.command()))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self._env(),
                                         preexec_fn=_die_with_parent)
        try:
            wait_until(self._ready, timeout, "broker /readyz and Kafka port on %s" % self.bootstrap)
        except TimeoutError as e:
            raise BrokerError("%s\n%s" % (e, self.log_tail())) from None

    def _ready(self):
        if self.proc.poll() is not None:
            raise BrokerError("broker exited with code %s during startup\n%s"
                              % (self.proc.returncode, self.log_tail()))
        status, _ = http_get(self.metrics_port, "/readyz", timeout=1.0)
        return status == 200 and port_accepts(self.port)

    def kill9(self, timeout=15.0):
        """SIGKILL, then wait until the process is reaped and the Kafka port refuses."""
        if self.proc is None or self.proc.poll() is not None:
            raise BrokerError("kill9: broker is not running\n%s" % self.log_tail())
        self.killed.append(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=timeout)
        with open(self.log_path, "ab") as log:
            log.write(b"\n=== compat harness: kill -9 done\n")
        wait_until(lambda: not port_accepts(self.port), timeout, "port %d to close" % self.port)

    def restart(self, timeout=30.0):
        """kill -9 and start again on the same ports and data dir."""
        self.kill9()
        self.start(timeout=timeout)

    def stop(self, timeout=15.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def crashed(self):
        """Exit code if the broker died by itself (not killed by the harness), else None."""
        if self.proc is not None and self.proc.poll() is not None \
                and self.proc.pid not in self.killed:
            return self.proc.returncode
        return None

    def log_tail(self, lines=150):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no broker log at %s)" % self.log_path
        return "--- broker log %s (last %d lines) ---\n%s" % (
            self.log_path, min(lines, len(text)), "\n".join(text[-lines:]))

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="session")
def broker_bin():
    b = Path(os.environ.get("SAMSA_BROKER_BIN", REPO / "target" / "debug" / "samsa-broker"))
    if not b.is_absolute():
        b = REPO / b
    if not os.access(b, os.X_OK):
        pytest.fail("broker binary %s not found: build it (cargo build -p samsa-broker) or set "
                    "SAMSA_BROKER_BIN; scripts/compat-tests.sh does both" % b, pytrace=False)
    return b


@pytest.fixture(scope="session")
def operator_bin(broker_bin):
    """$SAMSA_OPERATOR_BIN, default samsa-operator next to the broker binary (`make build` and
    scripts/compat-tests.sh build both into the same target directory)."""
    b = Path(os.environ.get("SAMSA_OPERATOR_BIN", broker_bin.parent / "samsa-operator"))
    if not b.is_absolute():
        b = REPO / b
    if not os.access(b, os.X_OK):
        pytest.fail("operator binary %s not found: build it (cargo build -p samsa-operator) or "
                    "set SAMSA_OPERATOR_BIN; scripts/compat-tests.sh does both" % b,
                    pytrace=False)
    return b


def _venv_python(env_name, kind):
    d = Path(os.environ.get(env_name) or _cache_venv(kind))
    py = d / "bin" / "python"
    if not os.access(py, os.X_OK):
        pytest.fail("venv %s missing: run scripts/test-deps.sh" % d, pytrace=False)
    return py


@pytest.fixture(scope="session")
def venv_latest():
    return _venv_python("SAMSA_VENV_LATEST", "latest")


@pytest.fixture(scope="session")
def venv_kp202():
    return _venv_python("SAMSA_VENV_KP202", "kp202")


@pytest.fixture
def broker_factory(broker_bin, tmp_path):
    """broker_factory(*extra_args) starts a broker; all are torn down after the test."""
    brokers = []

    def make(*extra_args):
        b = Broker(broker_bin, tmp_path / ("broker%d" % len(brokers)), extra_args)
        brokers.append(b)
        b.start()
        return b

    yield make
    crashed = [(b, b.crashed()) for b in brokers if b.crashed() is not None]
    for b in brokers:
        b.stop()
    if crashed:
        b, code = crashed[0]
        pytest.fail("broker exited by itself with code %s during the test\n%s"
                    % (code, b.log_tail()), pytrace=False)
    for b in brokers:
        # A panic in a connection task need not kill the process: still a broker bug.
        panics = [line for line in b.log_text().splitlines() if "panicked at" in line]
        if panics:
            pytest.fail("broker panicked (%s):\n%s\n%s" % (b.log_path, "\n".join(panics[:5]),
                                                           b.log_tail()), pytrace=False)


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


# Cases that fail because of a known broker gap, each described in FINDINGS.md. They run as
# strict xfails: when the broker closes the gap the case XPASSes, the run fails, and the entry
# must be removed here (and in FINDINGS.md). `pytest --runxfail` runs them as normal tests.
KNOWN_BROKER_GAPS = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for nodeid, reason in KNOWN_BROKER_GAPS.items():
            if item.nodeid.endswith(nodeid):
                item.add_marker(pytest.mark.xfail(reason=reason + " (FINDINGS.md)",
                                                  strict=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, attach the tail of every broker log it used to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "setup"):
        tmp = item.funcargs.get("tmp_path")
        logs = sorted(Path(tmp).glob("broker*/broker.log")) if tmp else []
        for p in logs:
            lines = p.read_text(errors="replace").splitlines()
            rep.sections.append(("broker log %s (last 200 lines)" % p,
                                 "\n".join(lines[-200:])))
