//! The operator's Prometheus metrics and its small HTTP endpoint (`/metrics`, `/healthz`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crd::RebalanceStatus;
use tokio::net::{TcpListener, TcpStream};

/// The resource kinds the operator reconciles.
pub const KINDS: [&str; 2] = ["KafkaCluster", "KafkaTopic"];

/// Reconcile counters and timings per resource kind.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    leader: IntGauge,
    healthy: AtomicBool,
    restart_seconds: HistogramVec,
    in_progress: IntGaugeVec,
    blocked: IntGaugeVec,
    rebalance_phase: IntGaugeVec,
    rebalance_partitions: IntGaugeVec,
    rebalance_bytes: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "samsa_operator_reconciles_total",
                "Reconciles by resource kind and result (ok, error)",
            ),
            &["kind", "result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "samsa_operator_reconcile_errors_total",
                "Reconciles that failed, by resource kind",
            ),
            &["kind"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "samsa_operator_reconcile_duration_seconds",
                "Time one reconcile took, by resource kind",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["kind"],
        )?;
        let leader = IntGauge::new(
            "samsa_operator_leader",
            "1 while this replica holds the leader lease",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        let restart_seconds = HistogramVec::new(
            HistogramOpts::new(
                "samsa_operator_rollout_broker_restart_seconds",
                "Seconds from a broker pod's deletion in a roll until the broker is Ready, registered and in every ISR",
            )
            .buckets(vec![5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0]),
            &["namespace", "cluster"],
        )?;
        let in_progress = IntGaugeVec::new(
            Opts::new(
                "samsa_operator_rollout_in_progress",
                "Brokers of the cluster restarting in a roll now",
            ),
            &["namespace", "cluster"],
        )?;
        let blocked = IntGaugeVec::new(
            Opts::new(
                "samsa_operator_rollout_blocked",
                "1 while a gate holds the cluster's roll, labelled with the reason (ConsumerLagging, MinInSyncReplicas, RolloutStuck, ...)",
            ),
            &["namespace", "cluster", "reason"],
        )?;
        registry.register(Box::new(restart_seconds.clone()))?;
        registry.register(Box::new(in_progress.clone()))?;
        registry.register(Box::new(blocked.clone()))?;
        let rebalance_phase = IntGaugeVec::new(
            Opts::new(
                "samsa_operator_rebalance_phase",
                "1 for the phase of the cluster's replica movement (status.rebalance.phase: Idle, Waiting, Moving, Blocked, Complete)",
            ),
            &["namespace", "cluster", "phase"],
        )?;
        let rebalance_partitions = IntGaugeVec::new(
            Opts::new(
                "samsa_operator_rebalance_partitions",
                "Partitions of the cluster's current replica movement, by state (done, total)",
            ),
            &["namespace", "cluster", "state"],
        )?;
        let rebalance_bytes = IntGaugeVec::new(
            Opts::new(
                "samsa_operator_rebalance_bytes",
                "Bytes of the cluster's current replica movement, by state (moved, total)",
            ),
            &["namespace", "cluster", "state"],
        )?;
        registry.register(Box::new(rebalance_phase.clone()))?;
        registry.register(Box::new(rebalance_partitions.clone()))?;
        registry.register(Box::new(rebalance_bytes.clone()))?;
        // Every series exists from the start, so rates and alerts see zeros, not gaps.
        for kind in KINDS {
            errors.with_label_values(&[kind]);
            for result in ["ok", "error"] {
                reconciles.with_label_values(&[kind, result]);
            }
        }
        Ok(Metrics {
            registry,
            reconciles,
            errors,
            duration,
            leader,
            healthy: AtomicBool::new(true),
            restart_seconds,
            in_progress,
            blocked,
            rebalance_phase,
            rebalance_partitions,
            rebalance_bytes,
        })
    }

    /// Records one reconcile of `kind`.
    pub fn observe(&self, kind: &str, took: Duration, ok: bool) {
        self.reconciles
            .with_label_values(&[kind, if ok { "ok" } else { "error" }])
            .inc();
        if !ok {
            self.errors.with_label_values(&[kind]).inc();
        }
        self.duration
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// Records a broker's restart in a roll.
    pub fn broker_restarted(&self, namespace: &str, cluster: &str, seconds: f64) {
        self.restart_seconds
            .with_label_values(&[namespace, cluster])
            .observe(seconds);
    }

    /// Sets a cluster's roll gauges: brokers restarting, and the reason that holds the roll
    /// (`None`: nothing does). A reason no longer in force is removed.
    pub fn set_rollout(
        &self,
        namespace: &str,
        cluster: &str,
        in_progress: usize,
        previous_reason: Option<&str>,
        reason: Option<&str>,
    ) {
        self.in_progress
            .with_label_values(&[namespace, cluster])
            .set(i64::try_from(in_progress).unwrap_or(i64::MAX));
        if let Some(old) = previous_reason {
            if Some(old) != reason {
                let _ = self.blocked.remove_label_values(&[namespace, cluster, old]);
            }
        }
        if let Some(r) = reason {
            self.blocked
                .with_label_values(&[namespace, cluster, r])
                .set(1);
        }
    }

    /// Sets a cluster's replica-movement gauges from its `status.rebalance`; the series of a
    /// previous phase is removed.
    pub fn set_rebalance(
        &self,
        namespace: &str,
        cluster: &str,
        previous_phase: Option<&str>,
        status: &RebalanceStatus,
    ) {
        let phase = format!("{:?}", status.phase);
        if let Some(old) = previous_phase.filter(|old| *old != phase) {
            let _ = self
                .rebalance_phase
                .remove_label_values(&[namespace, cluster, old]);
        }
        self.rebalance_phase
            .with_label_values(&[namespace, cluster, &phase])
            .set(1);
        for (state, v) in [
            ("done", status.partitions_done),
            ("total", status.partitions_total),
        ] {
            self.rebalance_partitions
                .with_label_values(&[namespace, cluster, state])
                .set(i64::from(v));
        }
        for (state, v) in [("moved", status.bytes_moved), ("total", status.bytes_total)] {
            self.rebalance_bytes
                .with_label_values(&[namespace, cluster, state])
                .set(v);
        }
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Marks the process unhealthy (`/healthz` answers 503).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// The registry, for metrics registered elsewhere (the cluster exporter).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let m = metrics.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &m)).await;
                    });
                }
            }
            _ = &mut shutdown => return,
        }
    }
}

/// Binds the HTTP endpoint.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return Ok(());
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let (status, content_type, body) = route(method, path, metrics);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn route(method: &str, path: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/healthz") if metrics.healthy.load(Ordering::Relaxed) => {
            ("200 OK", "text/plain", "ok\n".into())
        }
        ("GET", "/healthz") => (
            "503 Service Unavailable",
            "text/plain",
            "unhealthy\n".into(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_kind_and_result() {
        let m = Metrics::new().unwrap();
        m.observe("KafkaTopic", Duration::from_millis(20), true);
        m.observe("KafkaTopic", Duration::from_millis(20), false);
        m.observe("KafkaCluster", Duration::from_millis(20), true);
        let text = m.render();
        assert!(
            text.contains("samsa_operator_reconciles_total{kind=\"KafkaTopic\",result=\"ok\"} 1")
        );
        assert!(text
            .contains("samsa_operator_reconciles_total{kind=\"KafkaTopic\",result=\"error\"} 1"));
        assert!(text.contains("samsa_operator_reconcile_errors_total{kind=\"KafkaTopic\"} 1"));
        assert!(text
            .contains("samsa_operator_reconcile_duration_seconds_count{kind=\"KafkaCluster\"} 1"));
    }

    #[test]
    fn rebalance_gauges_follow_the_status() {
        use crate::crd::RebalancePhase;
        let m = Metrics::new().unwrap();
        let mut st = RebalanceStatus {
            phase: RebalancePhase::Moving,
            partitions_total: 12,
            partitions_done: 5,
            bytes_total: 9000,
            bytes_moved: 4000,
            ..Default::default()
        };
        m.set_rebalance("ns", "kc", None, &st);
        let text = m.render();
        for line in [
            "samsa_operator_rebalance_phase{cluster=\"kc\",namespace=\"ns\",phase=\"Moving\"} 1",
            "samsa_operator_rebalance_partitions{cluster=\"kc\",namespace=\"ns\",state=\"done\"} 5",
            "samsa_operator_rebalance_partitions{cluster=\"kc\",namespace=\"ns\",state=\"total\"} 12",
            "samsa_operator_rebalance_bytes{cluster=\"kc\",namespace=\"ns\",state=\"moved\"} 4000",
            "samsa_operator_rebalance_bytes{cluster=\"kc\",namespace=\"ns\",state=\"total\"} 9000",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        st.phase = RebalancePhase::Complete;
        st.partitions_done = 12;
        m.set_rebalance("ns", "kc", Some("Moving"), &st);
        let text = m.render();
        assert!(!text.contains("phase=\"Moving\""), "{text}");
        assert!(text.contains(
            "samsa_operator_rebalance_phase{cluster=\"kc\",namespace=\"ns\",phase=\"Complete\"} 1"
        ));
    }

    #[test]
    fn routes() {
        let m = Metrics::new().unwrap();
        assert_eq!(route("GET", "/healthz", &m).0, "200 OK");
        m.set_healthy(false);
        assert_eq!(route("GET", "/healthz", &m).0, "503 Service Unavailable");
        assert_eq!(route("GET", "/metrics?x=1", &m).0, "200 OK");
        assert_eq!(route("GET", "/nope", &m).0, "404 Not Found");
        assert_eq!(route("POST", "/metrics", &m).0, "405 Method Not Allowed");
    }

    #[tokio::test]
    async fn serves_http() {
        let m = Arc::new(Metrics::new().unwrap());
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, m, async {
            let _ = rx.await;
        }));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nok\n"), "{out}");
        let _ = tx.send(());
        server.await.unwrap();
    }
}
