"""Shared bits of the client driver scripts: record files, hex encoding, JSON output.

The driver scripts run inside a client's own virtualenv (for example kafka-python 2.0.2), so this
module must only use the standard library and must work on every Python the venvs use.

Record files are JSON lines written by the tests; one object per record:
    {"k": hex|null, "v": hex|null, "h": [[name, hex], ...], "ts": ms|null, "p": int|null}
"""

import json
import sys
import time


def unhex(s):
    return None if s is None else bytes.fromhex(s)


def tohex(b):
    if b is None:
        return None
    if isinstance(b, str):
        b = b.encode("utf-8")
    return bytes(b).hex()


def load_records(path):
    out = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def emit(obj):
    """Prints the one JSON result of a driver run on stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True))
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def passed(self):
        return time.monotonic() >= self.end
