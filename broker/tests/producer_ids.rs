//! Producer ids in a cluster: every broker hands out ids from blocks the controller quorum
//! commits, so no id is ever handed out twice, whichever broker a producer asks, across a
//! controller failover and a restart of brokers.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::Cluster;
use common::RawClient;
use kafka_protocol::messages::InitProducerIdRequest;

async fn init_producer_id(c: &mut RawClient) -> i64 {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = c.call(4, &req).await;
        if resp.error_code == 0 {
            assert_eq!(resp.producer_epoch, 0);
            return resp.producer_id.0;
        }
        // COORDINATOR_LOAD_IN_PROGRESS while no controller leader answers: retriable.
        assert_eq!(resp.error_code, 14, "InitProducerId failed: {resp:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no producer id in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` ids from each running broker in `ids`, checking each is new.
async fn take(cluster: &Cluster, brokers: &[i32], n: usize, seen: &mut BTreeSet<i64>) {
    for &b in brokers {
        let mut c = cluster.client(b).await;
        for _ in 0..n {
            let id = init_producer_id(&mut c).await;
            assert!(id >= 0);
            assert!(
                seen.insert(id),
                "producer id {id} from broker {b} was handed out before"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn producer_ids_never_repeat_across_brokers_failover_and_restarts() {
    let mut cluster = Cluster::start().await;
    let mut seen = BTreeSet::new();
    // Interleaved: brokers 1, 2 and 3 each take a block; 1200 from broker 1 crosses into a
    // second block of its own.
    take(&cluster, &[1, 2, 3, 1, 2, 3], 5, &mut seen).await;
    take(&cluster, &[1], 1200, &mut seen).await;
    assert_eq!(seen.len(), 1230);

    // The controller quorum's leader goes away: the others elect a new one and keep handing
    // out fresh blocks from the replicated counter.
    let leader = cluster.brokers[0]
        .as_ref()
        .and_then(|b| b.controller_leader())
        .expect("a controller leader") as i32;
    cluster.stop(leader).await;
    let others: Vec<i32> = (1..=3).filter(|b| *b != leader).collect();
    take(&cluster, &others, 1100, &mut seen).await;

    // It comes back: its old block is gone with the process, and it takes a new one.
    cluster.restart(leader).await;
    cluster.wait_registered().await;
    take(&cluster, &[leader, 1, 2, 3], 20, &mut seen).await;
    assert_eq!(seen.len(), 1230 + 2200 + 80);

    // A whole-cluster restart keeps the counter (it lives in the replicated metadata).
    let highest = *seen.last().unwrap();
    for b in 1..=3 {
        cluster.stop(b).await;
    }
    for b in 1..=3 {
        cluster.restart(b).await;
    }
    cluster.wait_registered().await;
    let mut c = cluster.client(2).await;
    let after = init_producer_id(&mut c).await;
    assert!(
        after > highest,
        "{after} after a full restart, {highest} before"
    );
    assert!(seen.insert(after));
    cluster.shutdown().await;
}
