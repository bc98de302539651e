#!/usr/bin/env python3
"""Prints every panel query of the chart's dashboards (samsa-*.json next to this file), one per
line, ready for Prometheus' /api/v1/query:

    <dashboard uid> TAB <panel title> TAB <expr>

with the dashboard variables replaced: $namespace and $cluster by the arguments,
$__rate_interval and $__interval by --rate-interval and --interval, and a multi-value variable
that has an "All" value ($topic, $consumergroup) by that value (`.*`). A variable it does not
know (a dashboard variable or a $__ one) is an error, so no query goes out half-substituted;
anything else that looks like one, such as label_replace's "$1", stays. Standard library only.

    queries.py --namespace NS --cluster NAME [--rate-interval 1m] [--interval 1m] [--dir DIR]
"""

import argparse
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def panels(items):
    """Every panel, those inside rows included, in order."""
    for p in items or []:
        if p.get("type") != "row":
            yield p
        yield from panels(p.get("panels"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--namespace", required=True, help="value of $namespace")
    ap.add_argument("--cluster", required=True, help="value of $cluster (the KafkaCluster)")
    ap.add_argument("--rate-interval", default="1m", help="value of $__rate_interval (1m)")
    ap.add_argument("--interval", default="1m", help="value of $__interval (1m)")
    ap.add_argument("--dir", default=HERE, help="directory of the dashboards' JSON")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.dir, "*.json")))
    if not files:
        sys.exit("queries.py: no *.json in %s" % args.dir)
    bad = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        values = {
            "namespace": args.namespace,
            "cluster": args.cluster,
            "__rate_interval": args.rate_interval,
            "__interval": args.interval,
        }
        for v in d.get("templating", {}).get("list", []):
            if v.get("includeAll") and v.get("allValue") and v["name"] not in values:
                values[v["name"]] = v["allValue"]

        names = {v.get("name") for v in d.get("templating", {}).get("list", [])}

        def substitute(m, values=values, names=names):
            name = m.group(1) or m.group(2)
            if name in values:
                return values[name]
            if name in names or name.startswith("__"):
                raise KeyError(name)
            return m.group(0)  # not a variable, e.g. label_replace's "$1"

        for p in panels(d.get("panels")):
            for t in p.get("targets") or []:
                expr = (t.get("expr") or "").strip()
                if not expr:
                    continue
                try:
                    expr = VARIABLE.sub(substitute, expr)
                except KeyError as e:
                    print(
                        "queries.py: %s: panel %r: unknown variable $%s"
                        % (os.path.basename(path), p.get("title"), e.args[0]),
                        file=sys.stderr,
                    )
                    bad += 1
                    continue
                title = " ".join(str(p.get("title", "")).split())
                print("%s\t%s\t%s" % (d.get("uid", ""), title, re.sub(r"\s*[\t\r\n]\s*", " ", expr)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
