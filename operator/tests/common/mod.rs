//! Shared helpers of the operator's integration tests: real `samsa-broker` processes on
//! loopback, on ports in 31000-31999.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod k8s;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use samsa_operator::kafka::AdminClient;

/// The broker binary: `$SAMSA_BROKER_BIN`, else the workspace's debug build (built if missing).
pub fn broker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SAMSA_BROKER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "SAMSA_BROKER_BIN={} does not exist",
            p.display()
        );
        return p;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("samsa-broker");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "samsa-broker", "--bin", "samsa-broker"])
            .current_dir(&root)
            .status()
            .expect("run cargo build -p samsa-broker");
        assert!(status.success(), "cargo build -p samsa-broker failed");
    }
    assert!(bin.exists(), "no broker binary at {}", bin.display());
    bin
}

static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// A free loopback port in 31000-31999: outside the kernel's ephemeral range (32768 and up by
/// default), so no outgoing connection can take it between this probe and the broker's bind.
/// The start is spread by process id; a process never gets the same port twice.
pub fn free_port() -> u16 {
    let start = (std::process::id() % 500) * 2;
    for _ in 0..1000 {
        let off = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let port = (31000 + (start + off) % 1000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 31000-31999");
}

/// A broker process, killed on drop.
pub struct Broker {
    pub child: Child,
    pub id: i32,
    pub kafka_port: u16,
    pub controller_port: u16,
    pub replication_port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ports {
    kafka: u16,
    controller: u16,
    replication: u16,
    metrics: u16,
}

fn ports() -> Ports {
    Ports {
        kafka: free_port(),
        controller: free_port(),
        replication: free_port(),
        metrics: free_port(),
    }
}

fn spawn(id: i32, p: &Ports, voters: Option<&str>) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let mut cmd = Command::new(broker_bin());
    cmd.arg("--node-id")
        .arg(id.to_string())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", p.kafka))
        .arg("--advertised-listener")
        .arg(format!("127.0.0.1:{}", p.kafka))
        .arg("--controller-listen")
        .arg(format!("127.0.0.1:{}", p.controller))
        .arg("--replication-listen")
        .arg(format!("127.0.0.1:{}", p.replication))
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{}", p.metrics))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--auto-create-topics-enable")
        .arg("false")
        .arg("--worker-threads")
        .arg("2")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(v) = voters {
        cmd.arg("--controller-quorum-voters").arg(v);
    }
    // The broker's own settings must not leak in from the environment running the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("SAMSA_") && k != "SAMSA_BROKER_BIN" {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().expect("spawn samsa-broker");
    Broker {
        child,
        id,
        kafka_port: p.kafka,
        controller_port: p.controller,
        replication_port: p.replication,
        metrics_port: p.metrics,
        dir,
    }
}

/// One broker (node id 0) with local metadata, ready for requests.
pub async fn single_broker() -> Broker {
    single_broker_with_id(0).await
}

/// One broker with node id `id` and local metadata, ready for requests.
pub async fn single_broker_with_id(id: i32) -> Broker {
    let b = spawn(id, &ports(), None);
    let client = AdminClient::new(&b.addr(), Duration::from_secs(5));
    wait_for(
        "the broker answers Metadata",
        Duration::from_secs(30),
        async || client.metadata(None).await.is_ok(),
    )
    .await;
    b
}

/// `n` brokers with ids 0..n forming one cluster (all controllers), ready when Metadata lists
/// every broker.
pub async fn cluster(n: i32) -> Vec<Broker> {
    let ports: Vec<Ports> = (0..n).map(|_| ports()).collect();
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{i}@127.0.0.1:{}", p.controller))
        .collect::<Vec<_>>()
        .join(",");
    let brokers: Vec<Broker> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| spawn(i as i32, p, Some(&voters)))
        .collect();
    let client = AdminClient::new(&brokers[0].addr(), Duration::from_secs(5));
    wait_for(
        &format!("Metadata lists {n} brokers"),
        Duration::from_secs(60),
        async || {
            client
                .metadata(None)
                .await
                .is_ok_and(|m| m.brokers.len() == n as usize)
        },
    )
    .await;
    brokers
}

/// Polls `cond` every 100 ms until it holds; panics naming `what` after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
