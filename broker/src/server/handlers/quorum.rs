//! DescribeQuorum for `__cluster_metadata` partition 0, as Kafka's brokers answer it: the
//! controller quorum's leader describes leader, epoch, high watermark and every voter's log end
//! and fetch times. Any broker answers: a process that is not the leader forwards the request
//! (Kafka's brokers forward it to the active controller) to the Kafka listener of a voter,
//! the known leader first; a forwarded request is never forwarded again, and a voter that does
//! not lead answers it NOT_LEADER_OR_FOLLOWER so the forwarder tries the next. When no leader
//! answers, a voter describes the quorum from its own view (the leader's id, its own log end).

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, Encodable, HeaderVersion, Request, StrBytes,
};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Broker;
use crate::quorum::{QuorumDescription, ReplicaProgress, Voters};

/// The metadata log's topic name in DescribeQuorum.
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";

/// The client id of a forwarded DescribeQuorum: its receiver never forwards it again.
const FORWARD_CLIENT_ID: &str = "samsa-quorum-forward";

/// How long one forwarding attempt may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest forwarded response accepted.
const MAX_FORWARDED_RESPONSE: usize = 1 << 20;

/// The answer about the metadata partition, with the v2 node endpoints.
struct QuorumAnswer {
    partition: PartitionData,
    nodes: Vec<Node>,
}

impl Broker {
    pub(super) async fn describe_quorum(
        &self,
        request: DescribeQuorumRequest,
        version: i16,
        client_id: Option<&str>,
    ) -> (DescribeQuorumResponse, i16) {
        if request.topics.is_empty() || request.topics.iter().any(|t| t.partitions.is_empty()) {
            let code = ResponseError::InvalidRequest.code();
            let response = DescribeQuorumResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_static_str(
                    "DescribeQuorum names no partition",
                )));
            return (response, code);
        }
        let wants_metadata = request.topics.iter().any(|t| {
            t.topic_name.as_str() == METADATA_TOPIC
                && t.partitions.iter().any(|p| p.partition_index == 0)
        });
        let answer = if wants_metadata {
            let forwarded = client_id == Some(FORWARD_CLIENT_ID);
            Some(self.quorum_answer(&request, version, forwarded).await)
        } else {
            None
        };
        let mut first_code = 0;
        let topics = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| match &answer {
                        Some(a)
                            if t.topic_name.as_str() == METADATA_TOPIC
                                && p.partition_index == 0 =>
                        {
                            a.partition.clone()
                        }
                        _ => PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_leader_id(BrokerId(-1))
                            .with_leader_epoch(-1)
                            .with_high_watermark(-1)
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "the only quorum partition is {METADATA_TOPIC}-0"
                            )))),
                    })
                    .inspect(|p| {
                        if first_code == 0 {
                            first_code = p.error_code;
                        }
                    })
                    .collect();
                TopicData::default()
                    .with_topic_name(t.topic_name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        // Node endpoints exist from v2 on; the codec refuses them in older versions.
        let nodes = answer
            .filter(|_| version >= 2)
            .map(|a| a.nodes)
            .unwrap_or_default();
        let response = DescribeQuorumResponse::default()
            .with_topics(topics)
            .with_nodes(nodes);
        (response, first_code)
    }

    /// The metadata partition's description: this node's when it leads (or runs alone), else
    /// the leader's through a voter's Kafka listener, else this voter's own view.
    async fn quorum_answer(
        &self,
        request: &DescribeQuorumRequest,
        version: i16,
        forwarded: bool,
    ) -> QuorumAnswer {
        let Some(cluster) = &self.cluster else {
            return self.single_node_answer();
        };
        // The voters of the Raft membership (as this controller holds it, or as the controllers
        // last told this broker), not only the bootstrap list.
        let voters = match &self.quorum {
            Some(q) => q.voters(),
            None => cluster.controller_voters(),
        };
        let own = self.quorum.as_ref().map(|q| q.describe());
        if let Some(d) = own.as_ref().filter(|d| d.is_leader) {
            return self.answer_from(d, &voters);
        }
        if forwarded {
            return not_leader(own.as_ref().and_then(|d| d.leader_id));
        }
        let image = cluster.current_image();
        let mut candidates: Vec<u64> = own.as_ref().and_then(|d| d.leader_id).into_iter().collect();
        candidates.extend(voters.0.keys().copied());
        let mut tried = Vec::new();
        for id in candidates {
            if tried.contains(&id) || i32::try_from(id).ok() == Some(self.node_id) {
                continue;
            }
            tried.push(id);
            let Some(b) = i32::try_from(id).ok().and_then(|i| image.brokers.get(&i)) else {
                continue;
            };
            if b.fenced {
                continue;
            }
            match forward(&b.host, b.port, version, request).await {
                Ok(response) => {
                    if let Some(a) = leader_answer(response) {
                        return a;
                    }
                    tracing::debug!(voter = id, "DescribeQuorum: not the quorum leader");
                }
                Err(e) => tracing::debug!(voter = id, error = %e, "DescribeQuorum forward failed"),
            }
        }
        match own {
            Some(d) if d.leader_id.is_some() => self.answer_from(&d, &voters),
            Some(d) => not_leader(d.leader_id),
            None => not_leader(None),
        }
    }

    fn answer_from(&self, d: &QuorumDescription, voters: &Voters) -> QuorumAnswer {
        let voter_ids: Vec<i32> = d
            .voters
            .iter()
            .filter_map(|v| i32::try_from(v.id).ok())
            .collect();
        // Kafka lists the replicas that follow the metadata log without a vote as observers:
        // the controllers being added (Raft learners, with their progress), then the brokers,
        // which receive the log through their metadata stream, so their offsets are not known.
        let mut observers: Vec<ReplicaState> = d.learners.iter().map(replica_state).collect();
        let learner_ids: Vec<i32> = d
            .learners
            .iter()
            .filter_map(|v| i32::try_from(v.id).ok())
            .collect();
        if let Some(c) = &self.cluster {
            observers.extend(
                c.current_image()
                    .brokers
                    .iter()
                    .filter(|(id, b)| {
                        !b.fenced && !voter_ids.contains(id) && !learner_ids.contains(id)
                    })
                    .map(|(id, _)| {
                        ReplicaState::default()
                            .with_replica_id(BrokerId(*id))
                            .with_log_end_offset(-1)
                            .with_last_fetch_timestamp(-1)
                            .with_last_caught_up_timestamp(-1)
                    }),
            );
        }
        let partition = PartitionData::default()
            .with_partition_index(0)
            .with_leader_id(BrokerId(
                d.leader_id
                    .and_then(|l| i32::try_from(l).ok())
                    .unwrap_or(-1),
            ))
            .with_leader_epoch(i32::try_from(d.term).unwrap_or(i32::MAX))
            .with_high_watermark(d.high_watermark)
            .with_current_voters(d.voters.iter().map(replica_state).collect())
            .with_observers(observers);
        let nodes = d
            .voters
            .iter()
            .filter_map(|v| {
                let addr = voters.address(v.id)?;
                let (host, port) = addr.rsplit_once(':')?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some(
                    Node::default()
                        .with_node_id(BrokerId(i32::try_from(v.id).ok()?))
                        .with_listeners(vec![Listener::default()
                            .with_name(StrBytes::from_static_str("CONTROLLER"))
                            .with_host(StrBytes::from_string(host.to_string()))
                            .with_port(port.parse().ok()?)]),
                )
            })
            .collect();
        QuorumAnswer { partition, nodes }
    }

    /// A broker without a controller quorum keeps its metadata itself: it is the only voter.
    fn single_node_answer(&self) -> QuorumAnswer {
        let now = crate::server::now_ms();
        let me = ReplicaState::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_log_end_offset(0)
            .with_last_fetch_timestamp(now)
            .with_last_caught_up_timestamp(now);
        let partition = PartitionData::default()
            .with_partition_index(0)
            .with_leader_id(BrokerId(self.node_id))
            .with_leader_epoch(0)
            .with_high_watermark(0)
            .with_current_voters(vec![me]);
        QuorumAnswer {
            partition,
            nodes: Vec::new(),
        }
    }
}

fn replica_state(v: &ReplicaProgress) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(i32::try_from(v.id).unwrap_or(-1)))
        .with_log_end_offset(v.log_end_offset)
        .with_last_fetch_timestamp(v.last_fetch_ms.unwrap_or(-1))
        .with_last_caught_up_timestamp(v.last_caught_up_ms.unwrap_or(-1))
}

fn not_leader(leader: Option<u64>) -> QuorumAnswer {
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(ResponseError::NotLeaderOrFollower.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "no controller quorum leader answered",
        )))
        .with_leader_id(BrokerId(
            leader.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1),
        ))
        .with_leader_epoch(-1)
        .with_high_watermark(-1);
    QuorumAnswer {
        partition,
        nodes: Vec::new(),
    }
}

/// The metadata partition of a forwarded answer, when the leader gave it without error.
fn leader_answer(response: DescribeQuorumResponse) -> Option<QuorumAnswer> {
    if response.error_code != 0 {
        return None;
    }
    let partition = response
        .topics
        .into_iter()
        .filter(|t| t.topic_name.as_str() == METADATA_TOPIC)
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == 0 && p.error_code == 0)?;
    Some(QuorumAnswer {
        partition,
        nodes: response.nodes,
    })
}

/// Sends DescribeQuorum for the metadata partition to the Kafka listener at `host:port`.
async fn forward(
    host: &str,
    port: i32,
    version: i16,
    request: &DescribeQuorumRequest,
) -> Result<DescribeQuorumResponse, String> {
    let port = u16::try_from(port).map_err(|_| format!("bad port {port}"))?;
    let asked = DescribeQuorumRequest::default().with_topics(
        request
            .topics
            .iter()
            .filter(|t| t.topic_name.as_str() == METADATA_TOPIC)
            .cloned()
            .map(|t| t.with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC))))
            .collect(),
    );
    let call = async {
        let mut stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let header = RequestHeader::default()
            .with_request_api_key(DescribeQuorumRequest::KEY)
            .with_request_api_version(version)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str(FORWARD_CLIENT_ID)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        encode_request_header_into_buffer(&mut buf, &header).map_err(|e| e.to_string())?;
        asked.encode(&mut buf, version).map_err(|e| e.to_string())?;
        let size = i32::try_from(buf.len() - 4).map_err(|e| e.to_string())?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        stream.write_all(&buf).await.map_err(|e| e.to_string())?;
        let mut prefix = [0u8; 4];
        stream
            .read_exact(&mut prefix)
            .await
            .map_err(|e| e.to_string())?;
        let len = usize::try_from(i32::from_be_bytes(prefix))
            .ok()
            .filter(|l| *l <= MAX_FORWARDED_RESPONSE)
            .ok_or_else(|| "bad response size".to_string())?;
        let mut frame = vec![0u8; len];
        stream
            .read_exact(&mut frame)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<Bytes, String>(Bytes::from(frame))
    };
    let mut frame = tokio::time::timeout(FORWARD_TIMEOUT, call)
        .await
        .map_err(|_| format!("no answer within {FORWARD_TIMEOUT:?}"))??;
    // Third-party decoding of bytes from the network: contain a panic.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ResponseHeader::decode(&mut frame, DescribeQuorumResponse::header_version(version))?;
        let response = DescribeQuorumResponse::decode(&mut frame, version)?;
        if frame.has_remaining() {
            anyhow::bail!("trailing bytes");
        }
        Ok(response)
    }))
    .map_err(|_| "decoder panicked".to_string())?
    .map_err(|e: anyhow::Error| e.to_string())
}
