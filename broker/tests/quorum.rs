//! The metadata quorum: three controllers on loopback in one process, each with its own redb
//! file. Leader election, proposals through a follower, failover, restart and catch-up from
//! disk, fencing of a broker that stops heartbeating with its session open, and at once of a
//! broker whose session stream ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::free_ports;
use samsa_broker::controller::{MetadataCommand, MetadataImage, Refusal, NO_LEADER};
use samsa_broker::metrics::Metrics;
use samsa_broker::quorum::{
    self, BrokerRegistration, ControllerClient, ControllerError, NodeId, QuorumConfig,
    QuorumHandle, Voters,
};
use samsa_proto::v1::controller_client::ControllerClient as Grpc;
use samsa_proto::v1::{BrokerHeartbeatReply, BrokerHeartbeatRequest, ProposeRequest, StatusCode};
use tempfile::TempDir;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);
const SESSION: Duration = Duration::from_millis(1500);

struct Node {
    config: QuorumConfig,
    _dir: TempDir,
    handle: Option<QuorumHandle>,
}

impl Node {
    fn handle(&self) -> &QuorumHandle {
        self.handle.as_ref().expect("node is running")
    }

    async fn start(&mut self) {
        let metrics = Metrics::new().unwrap();
        self.handle = Some(
            quorum::start(self.config.clone(), metrics.quorum.clone())
                .await
                .unwrap(),
        );
    }
}

async fn cluster() -> (Vec<Node>, Voters) {
    let ports = free_ports(3);
    let voters: Voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
        .parse()
        .unwrap();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let config = QuorumConfig {
            node_id: i as NodeId + 1,
            voters: voters.clone(),
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            advertised: format!("127.0.0.1:{port}"),
            data_dir: dir.path().to_path_buf(),
            session_timeout: SESSION,
            raft_heartbeat: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            request_timeout: Duration::from_secs(10),
            leader_rebalance: None,
            tls: None,
        };
        let mut node = Node {
            config,
            _dir: dir,
            handle: None,
        };
        node.start().await;
        nodes.push(node);
    }
    (nodes, voters)
}

/// Waits until every running node knows the same leader, other than `not`.
async fn agreed_leader(nodes: &[Node], not: Option<NodeId>) -> NodeId {
    let running: Vec<&QuorumHandle> = nodes.iter().filter_map(|n| n.handle.as_ref()).collect();
    let first = running[0]
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some() && m.current_leader != not,
            "a leader",
        )
        .await
        .unwrap()
        .current_leader
        .unwrap();
    for h in &running {
        h.raft()
            .wait(Some(WAIT))
            .metrics(|m| m.current_leader == Some(first), "the same leader")
            .await
            .unwrap();
    }
    first
}

/// Waits until `rx` holds an image at `version` or later and returns it.
async fn image_at(rx: &mut watch::Receiver<Arc<MetadataImage>>, version: u64) -> MetadataImage {
    let image = tokio::time::timeout(WAIT, rx.wait_for(|i| i.version >= version))
        .await
        .unwrap_or_else(|_| panic!("no image at version {version} within {WAIT:?}"))
        .unwrap();
    MetadataImage::clone(&image)
}

/// Waits until every running node has applied `version`; returns their images, checked equal.
async fn converged(nodes: &[Node], version: u64) -> MetadataImage {
    let mut images = Vec::new();
    for n in nodes.iter().filter_map(|n| n.handle.as_ref()) {
        let mut rx = n.image();
        images.push(image_at(&mut rx, version).await);
    }
    // Versions may differ if a later entry (a leader's blank entry) was applied meanwhile:
    // compare the metadata itself.
    for i in &images[1..] {
        assert_eq!(i.brokers, images[0].brokers);
        assert_eq!(i.topics, images[0].topics);
    }
    images.swap_remove(0)
}

fn create_topic(name: &str, assignment: Vec<Vec<i32>>) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::new_v4(),
        assignment,
        configs: BTreeMap::new(),
    }
}

/// A session stream opened by hand at the controller at `addr`: heartbeats go in on the
/// sender, answers come out of the stream; dropping both ends the stream.
struct RawSession {
    beats: mpsc::Sender<BrokerHeartbeatRequest>,
    replies: tonic::Streaming<BrokerHeartbeatReply>,
    request: BrokerHeartbeatRequest,
}

impl RawSession {
    async fn open(addr: &str, id: i32, incarnation: &str) -> RawSession {
        let mut grpc = Grpc::connect(format!("http://{addr}")).await.unwrap();
        let (beats, rx) = mpsc::channel(4);
        let replies = grpc
            .broker_session(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        RawSession {
            beats,
            replies,
            request: BrokerHeartbeatRequest {
                broker_id: id,
                incarnation_id: incarnation.to_string(),
            },
        }
    }

    /// Sends one heartbeat and returns its answer (a follower answers NOT_LEADER and ends the
    /// stream without reading it).
    async fn heartbeat(&mut self) -> BrokerHeartbeatReply {
        let _ = self.beats.send(self.request.clone()).await;
        tokio::time::timeout(WAIT, self.replies.message())
            .await
            .expect("a heartbeat answer")
            .unwrap()
            .expect("the stream is open")
    }
}

fn code(reply: &BrokerHeartbeatReply) -> i32 {
    reply.status.as_ref().unwrap().code
}

fn registration(id: i32) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        host: format!("broker-{id}"),
        port: 9092,
        rack: None,
        incarnation_id: Uuid::new_v4().to_string(),
        replication: String::new(),
        listeners: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_elect_replicate_fail_over_and_fence() {
    let (mut nodes, voters) = cluster().await;
    let leader = agreed_leader(&nodes, None).await;
    let follower = nodes
        .iter()
        .map(|n| n.handle().node_id())
        .find(|id| *id != leader)
        .unwrap();
    let idx = |id: NodeId| (id - 1) as usize;

    // Brokers register and heartbeat through the controller service (any voter: redirects).
    let mut sessions = Vec::new();
    for id in 101..=103 {
        let client = ControllerClient::new(voters.clone(), Duration::from_secs(5));
        let (mut rx, task) = client.run_session(registration(id), Duration::from_millis(300));
        let hb = tokio::time::timeout(WAIT, rx.wait_for(|hb| hb.is_some()))
            .await
            .expect("a heartbeat answer")
            .unwrap()
            .unwrap();
        assert!(!hb.fenced, "the first heartbeat unfences broker {id}");
        sessions.push((rx, task));
    }
    let mut client = ControllerClient::new(voters.clone(), Duration::from_secs(10));

    // A write sent straight to a follower is answered NOT_LEADER naming the leader.
    let follower_addr = voters.address(follower).unwrap().to_string();
    let mut raw = Grpc::connect(format!("http://{follower_addr}"))
        .await
        .unwrap();
    let command = serde_json::to_vec(&create_topic("direct", vec![vec![101]])).unwrap();
    let reply = raw
        .propose(ProposeRequest { command })
        .await
        .unwrap()
        .into_inner();
    let status = reply.status.unwrap();
    assert_eq!(status.code, StatusCode::NotLeader as i32);
    assert_eq!(status.leader_id as NodeId, leader);
    assert_eq!(status.leader_address, voters.address(leader).unwrap());

    // The follower's handle forwards to the leader; the command is applied everywhere.
    let f = nodes[idx(follower)].handle();
    let index = f
        .propose(create_topic(
            "orders",
            vec![vec![101, 102, 103], vec![102, 103, 101]],
        ))
        .await
        .unwrap();
    let refused = f
        .propose(create_topic("orders", vec![vec![101]]))
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        ControllerError::Refused(Refusal::TopicExists("orders".into()))
    );
    let image = converged(&nodes, index).await;
    let orders = &image.topics["orders"];
    assert_eq!(orders.partitions[0].leader, 101);
    assert_eq!(orders.partitions[1].isr, vec![102, 103, 101]);
    assert_eq!(image.brokers.len(), 3);
    assert!(image.brokers.values().all(|b| !b.fenced));

    // A broker-side watcher follows the image through the Controller service.
    let (mut watched, watcher) = ControllerClient::new(voters.clone(), WAIT).watch();
    let seen = image_at(&mut watched, index).await;
    assert_eq!(seen.topics, image.topics);

    // Stop the leader: the two others elect a new one and commit without it.
    let stopped_at = Instant::now();
    nodes[idx(leader)].handle.take().unwrap().shutdown().await;
    let new_leader = agreed_leader(&nodes, Some(leader)).await;
    let failover = stopped_at.elapsed();
    println!("controller leader failover: {failover:?} (node {leader} -> node {new_leader})");
    assert_ne!(new_leader, leader);
    let survivor = nodes.iter().find_map(|n| n.handle.as_ref()).unwrap();
    let after = survivor
        .propose(create_topic("after-failover", vec![vec![103, 101]]))
        .await
        .unwrap();
    let image = converged(&nodes, after).await;
    assert!(image.topics.contains_key("after-failover"));
    assert!(
        image.brokers.values().all(|b| !b.fenced),
        "the new leader gives brokers a fresh session: {:?}",
        image.brokers
    );

    // Restart the old leader from its redb file: it catches up to the same image.
    nodes[idx(leader)].start().await;
    let caught_up = converged(&nodes, after).await;
    assert!(caught_up.topics.contains_key("after-failover"));
    let restarted = nodes[idx(leader)].handle();
    // Its metrics catch up with what it applied shortly after; wait for them, bounded.
    let mut metrics = restarted.raft().metrics();
    let caught_up_metrics = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (term, applied) = {
                let m = metrics.borrow();
                (m.current_term, m.last_applied.map(|l| l.index))
            };
            if term >= 2 && applied >= Some(after) {
                return (term, applied);
            }
            if metrics.changed().await.is_err() {
                return (term, applied);
            }
        }
    })
    .await;
    let (term, applied) = caught_up_metrics.expect("the restarted node's metrics never caught up");
    assert!(applied >= Some(after), "applied {applied:?}, want {after}");
    assert!(term >= 2, "term {term}");

    // A broker that registers, heartbeats once and goes silent with its session stream open
    // (a paused process) is fenced within the session timeout, not before; the partition it
    // led moves to the next ISR member.
    let silent = registration(200);
    client.register(&silent).await.unwrap();
    let leader_now = agreed_leader(&nodes, None).await;
    let leader_addr = voters.address(leader_now).unwrap().to_string();
    let mut session = RawSession::open(&leader_addr, 200, &silent.incarnation_id).await;
    let hb = session.heartbeat().await;
    let heard_at = Instant::now();
    assert_eq!(code(&hb), StatusCode::Ok as i32, "{hb:?}");
    assert!(!hb.fenced);
    // A stream of an incarnation the controller does not know is refused, and its end fences
    // nobody.
    let mut stale = RawSession::open(&leader_addr, 200, "an-older-incarnation").await;
    let refused = stale.heartbeat().await;
    assert_eq!(
        code(&refused),
        StatusCode::UnknownBroker as i32,
        "{refused:?}"
    );
    drop(stale);
    // A follower answers NOT_LEADER on the stream, naming the leader.
    let follower_now = nodes
        .iter()
        .filter_map(|n| n.handle.as_ref())
        .map(|h| h.node_id())
        .find(|id| *id != leader_now)
        .unwrap();
    let mut at_follower = RawSession::open(
        voters.address(follower_now).unwrap(),
        200,
        &silent.incarnation_id,
    )
    .await;
    let redirect = at_follower.heartbeat().await;
    assert_eq!(
        code(&redirect),
        StatusCode::NotLeader as i32,
        "{redirect:?}"
    );
    assert_eq!(redirect.status.unwrap().leader_id as NodeId, leader_now);
    drop(at_follower);
    let created = client
        .propose(&create_topic("led-by-200", vec![vec![200, 101]]))
        .await
        .unwrap();
    let mut rx = restarted.image();
    let before = image_at(&mut rx, created).await;
    assert_eq!(before.topics["led-by-200"].partitions[0].leader, 200);
    assert!(!before.brokers[&200].fenced);
    let fenced = tokio::time::timeout(
        SESSION * 4,
        rx.wait_for(|i| i.brokers.get(&200).is_some_and(|b| b.fenced)),
    )
    .await
    .expect("broker 200 fenced within the session timeout")
    .unwrap()
    .clone();
    let silent_for = heard_at.elapsed();
    println!("silent broker fenced after {silent_for:?}");
    assert!(
        silent_for >= SESSION * 3 / 4,
        "fenced after {silent_for:?}, before the session timeout {SESSION:?}: the stale or \
         redirected stream's end fenced it"
    );
    drop(session);
    let p = &fenced.topics["led-by-200"].partitions[0];
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch),
        (101, vec![101], 1)
    );
    assert!(fenced
        .brokers
        .iter()
        .all(|(id, b)| b.fenced == (*id == 200)));
    assert_ne!(p.leader, NO_LEADER);

    for (_, task) in &sessions {
        task.abort();
    }
    watcher.abort();
    for n in &mut nodes {
        if let Some(h) = n.handle.take() {
            h.shutdown().await;
        }
    }
}

/// A single voter with a session timeout far longer than the test's waits, so a fence seen
/// here comes from a session stream's end.
async fn single_voter(session_timeout: Duration) -> (QuorumHandle, Voters, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let voters: Voters = format!("1@127.0.0.1:{port}").parse().unwrap();
    let config = QuorumConfig {
        node_id: 1,
        voters: voters.clone(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        advertised: format!("127.0.0.1:{port}"),
        data_dir: dir.path().to_path_buf(),
        session_timeout,
        raft_heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
        request_timeout: Duration::from_secs(5),
        leader_rebalance: None,
        tls: None,
    };
    let node = quorum::start(config, Metrics::new().unwrap().quorum.clone())
        .await
        .unwrap();
    (node, voters, dir)
}

/// Waits until broker `id` is fenced (`want`) or not, within `within`.
async fn fenced_within(
    rx: &mut watch::Receiver<Arc<MetadataImage>>,
    id: i32,
    want: bool,
    within: Duration,
) -> Result<MetadataImage, tokio::time::error::Elapsed> {
    let image = tokio::time::timeout(
        within,
        rx.wait_for(|i| i.brokers.get(&id).is_some_and(|b| b.fenced == want)),
    )
    .await?
    .unwrap();
    Ok(MetadataImage::clone(&image))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_session_stream_ends_is_fenced_at_once() {
    let long = Duration::from_secs(120);
    let (node, voters, _dir) = single_voter(long).await;
    let addr = voters.address(1).unwrap().to_string();
    let mut image = node.image();
    let mut client = ControllerClient::new(voters.clone(), WAIT);

    // The broker's own session task: heartbeats unfence it; dropping it ends the stream.
    let reg = registration(8);
    let (mut beats, task) = client
        .clone()
        .run_session(reg.clone(), Duration::from_millis(200));
    let hb = tokio::time::timeout(WAIT, beats.wait_for(|hb| hb.is_some_and(|h| !h.fenced)))
        .await
        .expect("an unfencing heartbeat answer")
        .unwrap()
        .unwrap();
    assert!(!hb.fenced);
    let seven_reg = registration(7);
    client.register(&seven_reg).await.unwrap();
    let mut seven = RawSession::open(&addr, 7, &seven_reg.incarnation_id).await;
    assert!(!seven.heartbeat().await.fenced);
    let created = node
        .propose(create_topic("led-by-8", vec![vec![8, 7]]))
        .await
        .unwrap();
    assert_eq!(
        image_at(&mut image, created).await.topics["led-by-8"].partitions[0].leader,
        8
    );
    task.abort();
    let _ = task.await;
    drop(beats);
    let ended = Instant::now();
    let fenced = fenced_within(&mut image, 8, true, WAIT)
        .await
        .expect("broker 8 fenced when its session ended");
    println!(
        "broker fenced {:?} after its session stream ended (session timeout {long:?})",
        ended.elapsed()
    );
    let p = &fenced.topics["led-by-8"].partitions[0];
    assert_eq!((p.leader, p.isr.clone()), (7, vec![7]));
    assert!(!fenced.brokers[&7].fenced);

    // A broker that reconnects: its replaced stream ending late fences nothing; the end of the
    // current one does.
    let mut second = RawSession::open(&addr, 7, &seven.request.incarnation_id).await;
    assert_eq!(code(&second.heartbeat().await), StatusCode::Ok as i32);
    drop(seven);
    assert!(
        fenced_within(&mut image, 7, true, Duration::from_secs(1))
            .await
            .is_err(),
        "the end of a replaced stream fenced broker 7"
    );
    // A broker that closes its stream gracefully is fenced as well (it is going away).
    drop(second.beats);
    let fenced = fenced_within(&mut image, 7, true, WAIT)
        .await
        .expect("broker 7 fenced when it closed its session");
    assert!(fenced.brokers[&7].fenced);
    // It comes back with a heartbeat on a new stream.
    let mut third = RawSession::open(&addr, 7, &second.request.incarnation_id).await;
    let hb = third.heartbeat().await;
    assert_eq!((code(&hb), hb.fenced), (StatusCode::Ok as i32, false));
    fenced_within(&mut image, 7, false, WAIT)
        .await
        .expect("broker 7 unfenced by its heartbeat");

    // A restarted process (a new incarnation) is not hit by its predecessor's stream ending.
    let mut restarted = reg.clone();
    restarted.incarnation_id = Uuid::new_v4().to_string();
    let (mut beats, task) = client
        .clone()
        .run_session(restarted, Duration::from_millis(200));
    tokio::time::timeout(WAIT, beats.wait_for(|hb| hb.is_some_and(|h| !h.fenced)))
        .await
        .expect("the new incarnation unfenced")
        .unwrap();
    let mut old = RawSession::open(&addr, 8, &reg.incarnation_id).await;
    assert_eq!(
        code(&old.heartbeat().await),
        StatusCode::UnknownBroker as i32
    );
    drop(old);
    assert!(
        fenced_within(&mut image, 8, true, Duration::from_secs(1))
            .await
            .is_err(),
        "the old incarnation's stream fenced the new one"
    );

    // A controller stops with session streams open: it ends them without waiting for the
    // brokers.
    tokio::time::timeout(WAIT, node.shutdown())
        .await
        .expect("the controller stopped with sessions open");
    assert!(!image.borrow().brokers[&7].fenced);
    drop(third);
    task.abort();
}

#[tokio::test]
async fn single_voter_forms_a_quorum_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let config = QuorumConfig {
        node_id: 1,
        voters: format!("1@127.0.0.1:{port}").parse().unwrap(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        advertised: format!("127.0.0.1:{port}"),
        data_dir: dir.path().to_path_buf(),
        session_timeout: Duration::from_secs(9),
        raft_heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
        request_timeout: Duration::from_secs(5),
        leader_rebalance: None,
        tls: None,
    };
    let started = Instant::now();
    let metrics = Metrics::new().unwrap();
    let node = quorum::start(config.clone(), metrics.quorum.clone())
        .await
        .unwrap();
    let index = node
        .propose(MetadataCommand::RegisterBroker {
            id: 1,
            host: "localhost".into(),
            port: 9092,
            rack: None,
            incarnation_id: "a".into(),
            replication: String::new(),
            listeners: Vec::new(),
        })
        .await
        .unwrap();
    println!("single voter: first commit after {:?}", started.elapsed());
    assert!(node.is_leader());
    let text = metrics.render();
    assert!(text.contains("samsa_quorum_role 2"), "{text}");
    assert!(text.contains("samsa_quorum_leader_id 1"), "{text}");
    assert!(text.contains("samsa_controller_fenced_brokers 1"), "{text}");
    node.shutdown().await;

    // Restarted from its file, the single voter leads again with the same image.
    let node = quorum::start(config, Metrics::new().unwrap().quorum.clone())
        .await
        .unwrap();
    let mut rx = node.image();
    let image = image_at(&mut rx, index).await;
    assert_eq!(image.brokers[&1].incarnation_id, "a");
    node.shutdown().await;
}
