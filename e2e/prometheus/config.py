#!/usr/bin/env python3
"""Prometheus configuration for the e2e test, made from the cluster's ServiceMonitors and
PrometheusRules (the Prometheus Operator's kinds), as `kubectl get -o json` prints them.

The e2e cluster has no Prometheus Operator: this script does the part of its work the test
needs, for the fields Samsa's objects use (selector.matchLabels, namespaceSelector.matchNames,
endpoints[].port/path/honorLabels/relabelings; rules' groups), and refuses any other field
rather than ignore it. Every target gets the labels the Prometheus Operator gives: namespace,
service, pod, container, endpoint, job (the Service's name).

    config.py --monitors monitors.json --rules rules.json --out DIR [--interval 5s]

writes DIR/prometheus.yml and DIR/rules.yml. --interval replaces every endpoint's interval (the
test scrapes faster than a real install would); scrape timeouts are capped to it.
"""
import argparse
import json
import os
import re
import sys

SM_SPEC_FIELDS = {"selector", "namespaceSelector", "endpoints", "jobLabel"}
EP_FIELDS = {"port", "path", "interval", "scrapeTimeout", "honorLabels", "relabelings"}
RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}


def sd_label(key):
    """A Kubernetes label key as Prometheus's service discovery spells it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def refuse(what, fields, allowed):
    extra = sorted(set(fields) - allowed)
    if extra:
        sys.exit(f"config.py: {what}: unsupported field(s) {', '.join(extra)}")


def scrape_configs(monitor, interval):
    meta, spec = monitor["metadata"], monitor.get("spec", {})
    where = f"ServiceMonitor {meta['namespace']}/{meta['name']}"
    refuse(where + " spec", spec, SM_SPEC_FIELDS)
    selector = spec.get("selector", {})
    refuse(where + " spec.selector", selector, {"matchLabels"})
    ns_sel = spec.get("namespaceSelector", {})
    refuse(where + " spec.namespaceSelector", ns_sel, {"matchNames", "any"})
    namespaces = ns_sel.get("matchNames") or ([] if ns_sel.get("any") else [meta["namespace"]])
    out = []
    for i, ep in enumerate(spec.get("endpoints", [])):
        refuse(f"{where} spec.endpoints[{i}]", ep, EP_FIELDS)
        if "port" not in ep:
            sys.exit(f"config.py: {where} spec.endpoints[{i}]: only named ports are supported")
        relabel = []
        for key, value in sorted(selector.get("matchLabels", {}).items()):
            relabel.append({
                "source_labels": [f"__meta_kubernetes_service_label_{sd_label(key)}",
                                  f"__meta_kubernetes_service_labelpresent_{sd_label(key)}"],
                "regex": f"({re.escape(value)});true",
                "action": "keep",
            })
        relabel.append({"source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                        "regex": re.escape(ep["port"]), "action": "keep"})
        for label, source in [("namespace", "namespace"), ("service", "service_name"),
                              ("pod", "pod_name"), ("container", "pod_container_name"),
                              ("job", "service_name")]:
            relabel.append({"source_labels": [f"__meta_kubernetes_{source}"],
                            "target_label": label})
        relabel.append({"target_label": "endpoint", "replacement": ep["port"]})
        for j, r in enumerate(ep.get("relabelings", [])):
            refuse(f"{where} spec.endpoints[{i}].relabelings[{j}]", r, set(RELABEL_FIELDS))
            relabel.append({RELABEL_FIELDS[k]: v for k, v in r.items()})
        cfg = {
            "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{i}",
            "honor_labels": bool(ep.get("honorLabels", False)),
            "metrics_path": ep.get("path", "/metrics"),
            "scrape_interval": interval or ep.get("interval", "30s"),
            "kubernetes_sd_configs": [{"role": "endpointslice",
                                       "namespaces": {"names": namespaces}}],
            "relabel_configs": relabel,
        }
        if interval:
            cfg["scrape_timeout"] = interval
        elif "scrapeTimeout" in ep:
            cfg["scrape_timeout"] = ep["scrapeTimeout"]
        out.append(cfg)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--monitors", required=True, help="kubectl get servicemonitors -A -o json")
    ap.add_argument("--rules", required=True, help="kubectl get prometheusrules -A -o json")
    ap.add_argument("--out", required=True, help="directory for prometheus.yml and rules.yml")
    ap.add_argument("--interval", default="", help="scrape and evaluation interval, e.g. 5s")
    args = ap.parse_args()
    with open(args.monitors) as f:
        monitors = json.load(f).get("items", [])
    with open(args.rules) as f:
        rules = json.load(f).get("items", [])
    scrapes = []
    for m in sorted(monitors, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"])):
        scrapes.extend(scrape_configs(m, args.interval))
    groups = []
    for r in sorted(rules, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"])):
        groups.extend(r.get("spec", {}).get("groups", []))
    config = {
        "global": {"scrape_interval": args.interval or "30s",
                   "evaluation_interval": args.interval or "30s"},
        "rule_files": ["/etc/prometheus/rules.yml"],
        "scrape_configs": scrapes,
    }
    os.makedirs(args.out, exist_ok=True)
    # JSON is YAML: no YAML library needed.
    with open(os.path.join(args.out, "prometheus.yml"), "w") as f:
        json.dump(config, f, indent=1, sort_keys=True)
    with open(os.path.join(args.out, "rules.yml"), "w") as f:
        json.dump({"groups": groups}, f, indent=1, sort_keys=True)
    print(f"{len(scrapes)} scrape configs from {len(monitors)} ServiceMonitors, "
          f"{sum(len(g.get('rules', [])) for g in groups)} rules in {len(groups)} groups "
          f"from {len(rules)} PrometheusRules")


if __name__ == "__main__":
    main()
