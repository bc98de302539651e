//! The brokers' request errors, from their `samsa_requests_total{api, error}` counters: how
//! many requests they answered, and how many with an error that means the broker failed to
//! serve (as opposed to the answers clients get every day, such as NOT_LEADER_OR_FOLLOWER
//! after a leadership move or REBALANCE_IN_PROGRESS during a group's rebalance). The blue-green
//! verification window holds while the new brokers fail too many requests. Pure.

use std::collections::BTreeMap;

/// Error labels (`samsa_requests_total{error=...}`) that count as a failed request: the broker
/// could not do what a well-formed request asked.
pub const SERVER_ERRORS: &[&str] = &[
    "UnknownServerError",
    "CorruptMessage",
    "RequestTimedOut",
    "NetworkException",
    "BrokerNotAvailable",
    "ReplicaNotAvailable",
    "NotEnoughReplicas",
    "NotEnoughReplicasAfterAppend",
    "KafkaStorageError",
    "OutOfOrderSequenceNumber",
    "NotController",
];

/// Fewer requests than this between two samples give no verdict.
pub const MIN_REQUESTS: u64 = 50;

/// One broker's request counters: every request, and the failed ones by error label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Requests answered.
    pub total: u64,
    /// Failed requests by error label (only [`SERVER_ERRORS`] and unknown codes).
    pub failed: BTreeMap<String, u64>,
}

fn label_value<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

/// Sums `samsa_requests_total` over the APIs of a Prometheus text exposition.
pub fn parse(text: &str) -> RequestCounts {
    let mut counts = RequestCounts::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("samsa_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let value = value as u64;
        counts.total = counts.total.saturating_add(value);
        let error = label_value(labels, "error").unwrap_or("none");
        if SERVER_ERRORS.contains(&error) || error.starts_with("code_") {
            *counts.failed.entry(error.to_string()).or_default() += value;
        }
    }
    counts
}

/// Why the brokers of `now` (by id) fail too many requests since `before`: more than
/// `max_percent` of the requests between the two samples failed. `None`: within bounds, or too
/// few requests to judge. A broker missing from `before`, or whose counters went down (it
/// restarted), is judged from its next sample.
pub fn failing(
    before: &BTreeMap<i32, RequestCounts>,
    now: &BTreeMap<i32, RequestCounts>,
    max_percent: f64,
) -> Option<String> {
    let mut total = 0u64;
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_broker: Vec<String> = Vec::new();
    for (id, n) in now {
        let Some(b) = before.get(id) else { continue };
        if n.total < b.total {
            continue;
        }
        let d_total = n.total - b.total;
        let mut d_failed = 0u64;
        for (label, v) in &n.failed {
            let d = v.saturating_sub(b.failed.get(label).copied().unwrap_or(0));
            if d > 0 {
                *failed.entry(label.clone()).or_default() += d;
                d_failed += d;
            }
        }
        total += d_total;
        if d_failed > 0 {
            per_broker.push(format!("broker {id}: {d_failed} of {d_total}"));
        }
    }
    if total < MIN_REQUESTS {
        return None;
    }
    let failed_total: u64 = failed.values().sum();
    let percent = failed_total as f64 * 100.0 / total as f64;
    if percent <= max_percent {
        return None;
    }
    let kinds: Vec<String> = failed.iter().map(|(l, v)| format!("{l} {v}")).collect();
    Some(format!(
        "the new brokers failed {failed_total} of {total} requests ({percent:.1}%, at most {max_percent}% allowed): {} ({})",
        kinds.join(", "),
        per_broker.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP samsa_requests_total Kafka requests handled, by API and error code
# TYPE samsa_requests_total counter
samsa_requests_total{api=\"Produce\",error=\"none\"} 900
samsa_requests_total{api=\"Produce\",error=\"NotEnoughReplicas\"} 40
samsa_requests_total{api=\"Fetch\",error=\"NotLeaderOrFollower\"} 60
samsa_requests_total{api=\"Metadata\",error=\"code_999\"} 2
samsa_request_duration_seconds_count{api=\"Produce\"} 940
";

    #[test]
    fn parse_sums_every_api_and_keeps_only_failures() {
        let c = parse(TEXT);
        assert_eq!(c.total, 1002);
        assert_eq!(
            c.failed,
            BTreeMap::from([
                ("NotEnoughReplicas".to_string(), 40),
                ("code_999".to_string(), 2)
            ])
        );
        assert_eq!(c.failed.values().sum::<u64>(), 42);
        assert_eq!(
            parse("garbage\nsamsa_requests_total{api=\"x\"} NaN\n"),
            RequestCounts::default()
        );
    }

    fn counts(total: u64, failed: &[(&str, u64)]) -> RequestCounts {
        RequestCounts {
            total,
            failed: failed.iter().map(|(l, v)| (l.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn failing_judges_the_requests_between_two_samples() {
        let before = BTreeMap::from([
            (1000, counts(1000, &[("NotEnoughReplicas", 500)])),
            (1001, counts(0, &[])),
        ]);
        // 200 new requests, 3 failed: 1.5% > 1%.
        let now = BTreeMap::from([
            (1000, counts(1100, &[("NotEnoughReplicas", 502)])),
            (1001, counts(100, &[("RequestTimedOut", 1)])),
        ]);
        let why = failing(&before, &now, 1.0).unwrap();
        assert!(why.contains("failed 3 of 200 requests (1.5%"), "{why}");
        assert!(
            why.contains("NotEnoughReplicas 2, RequestTimedOut 1"),
            "{why}"
        );
        assert!(
            why.contains("broker 1000: 2 of 100; broker 1001: 1 of 100"),
            "{why}"
        );
        assert_eq!(failing(&before, &now, 2.0), None, "within 2%");
        // Old failures alone (before the window) do not count.
        let quiet = BTreeMap::from([(1000, counts(1200, &[("NotEnoughReplicas", 500)]))]);
        assert_eq!(failing(&before, &quiet, 0.0), None);
    }

    #[test]
    fn too_few_requests_restarts_and_new_brokers_give_no_verdict() {
        let before = BTreeMap::from([(1000, counts(100, &[]))]);
        let few = BTreeMap::from([(1000, counts(110, &[("UnknownServerError", 10)]))]);
        assert_eq!(failing(&before, &few, 1.0), None, "10 requests: no verdict");
        let restarted = BTreeMap::from([(1000, counts(5, &[("UnknownServerError", 5)]))]);
        assert_eq!(failing(&before, &restarted, 1.0), None);
        let unknown = BTreeMap::from([(1002, counts(1000, &[("UnknownServerError", 1000)]))]);
        assert_eq!(
            failing(&before, &unknown, 1.0),
            None,
            "no earlier sample of 1002"
        );
    }
}
