//! Three brokers in one process in cluster mode (every one a controller too), on loopback ports.

use clap::Parser;
use kafka_protocol::messages::MetadataRequest;
use samsa_broker::config::BrokerConfig;
use samsa_broker::server::{start, RunningBroker};
use tempfile::TempDir;

use super::{free_ports, RawClient};

/// Three in-process brokers, each a member of the controller quorum.
pub struct Cluster {
    pub configs: Vec<BrokerConfig>,
    pub brokers: Vec<Option<RunningBroker>>,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(&[]).await
    }

    /// Three brokers with `extra` flags added to each.
    pub async fn start_with(extra: &[&str]) -> Cluster {
        Cluster::start_tweaked(extra, |_, _| {}).await
    }

    /// Three brokers with `extra` flags added to each, and `tweak(index, config)` applied
    /// (index 0-based).
    pub async fn start_tweaked(
        extra: &[&str],
        tweak: impl Fn(usize, &mut BrokerConfig),
    ) -> Cluster {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        Cluster::start_nodes(|_| extra.clone(), tweak).await
    }

    /// Three brokers, broker `i` (0-based) with the flags `extra(i)` added.
    pub async fn start_with_nodes(extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        Cluster::start_nodes(extra, |_, _| {}).await
    }

    /// Three brokers, broker `i` with the flags `extra(i)` and then `tweak(i, config)`.
    async fn start_nodes(
        extra: impl Fn(usize) -> Vec<String>,
        tweak: impl Fn(usize, &mut BrokerConfig),
    ) -> Cluster {
        let ports = free_ports(12);
        let voters = (0..3)
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[3 + i]))
            .collect::<Vec<_>>()
            .join(",");
        let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let configs: Vec<BrokerConfig> = (0..3)
            .map(|i| {
                let kafka = format!("127.0.0.1:{}", ports[i]);
                let mut args = vec![
                    "samsa-broker".to_string(),
                    "--node-id".into(),
                    (i + 1).to_string(),
                    "--data-dir".into(),
                    dirs[i].path().display().to_string(),
                    "--listen".into(),
                    kafka.clone(),
                    "--advertised-listener".into(),
                    kafka,
                    "--metrics-listen".into(),
                    format!("127.0.0.1:{}", ports[9 + i]),
                    "--controller-listen".into(),
                    format!("127.0.0.1:{}", ports[3 + i]),
                    "--replication-listen".into(),
                    format!("127.0.0.1:{}", ports[6 + i]),
                    "--controller-quorum-voters".into(),
                    voters.clone(),
                    "--broker-session-timeout-ms".into(),
                    "3000".into(),
                    "--broker-heartbeat-interval-ms".into(),
                    "500".into(),
                    "--offsets-topic-num-partitions".into(),
                    "4".into(),
                ];
                args.extend(extra(i));
                let mut config = BrokerConfig::parse_from(args);
                tweak(i, &mut config);
                config
            })
            .collect();
        let mut brokers = Vec::new();
        for c in &configs {
            brokers.push(Some(start(c.clone()).await.expect("broker starts")));
        }
        let cluster = Cluster {
            configs,
            brokers,
            _dirs: dirs,
        };
        cluster.wait_registered().await;
        cluster
    }

    /// Waits (30 s at most) until every running broker's Metadata lists all three brokers as
    /// live: they have registered, been unfenced, and each has the metadata saying so. Before
    /// that a CreateTopics may find fewer live brokers than its replication factor.
    pub async fn wait_registered(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        for (i, b) in self.brokers.iter().enumerate() {
            let Some(b) = b else { continue };
            let mut c = RawClient::connect(b.kafka_addr).await;
            loop {
                let live = c.call(9, &MetadataRequest::default()).await.brokers.len();
                if live == 3 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "broker {} lists {live} live brokers, not 3, after 30 s",
                    i + 1
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// A connection to broker `id` (1-based).
    pub async fn client(&self, id: i32) -> RawClient {
        let b = self.brokers[(id - 1) as usize]
            .as_ref()
            .expect("broker is running");
        RawClient::connect(b.kafka_addr).await
    }

    pub async fn stop(&mut self, id: i32) {
        if let Some(b) = self.brokers[(id - 1) as usize].take() {
            b.shutdown().await;
        }
    }

    /// Starts broker `id` again on its data dir. A broker stopped a moment ago may still hold
    /// its quorum storage's file lock while its last tasks wind down: that start is retried
    /// for up to 10 s.
    pub async fn restart(&mut self, id: i32) {
        let i = (id - 1) as usize;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match start(self.configs[i].clone()).await {
                Ok(b) => {
                    self.brokers[i] = Some(b);
                    return;
                }
                Err(e)
                    if e.to_string().contains("already open")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("broker {id} restarts: {e:#}"),
            }
        }
    }

    pub async fn shutdown(mut self) {
        for id in 1..=3 {
            self.stop(id).await;
        }
    }
}
