//! The [`Admin`] trait: what the operator's reconcile asks of a Kafka cluster, in front of
//! [`AdminClient`], so that planners and steps can be unit-tested with a hand-made fake. It only
//! names requests; the wire work stays in `AdminClient`.

use std::collections::BTreeMap;
use std::future::Future;

use super::{
    AdminClient, AdminError, ClusterMetadata, ConfigEntry, ElectionResult, GroupListing,
    PartitionOffsets, QuorumInfo, Reassignments,
};

/// The cluster reads of one reconcile, plus the two changes steps make (leader elections and
/// dynamic configs). Every future is `Send`, so callers can run in spawned tasks.
pub trait Admin: Send + Sync {
    /// Metadata for `topics` (all when `None`, brokers only when empty).
    fn metadata(
        &self,
        topics: Option<&[String]>,
    ) -> impl Future<Output = Result<ClusterMetadata, AdminError>> + Send;

    /// Config entries of a resource (`RESOURCE_TOPIC` + name, `RESOURCE_BROKER` + id).
    fn describe_configs(
        &self,
        resource_type: i8,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ConfigEntry>, AdminError>> + Send;

    /// Every consumer group of the cluster.
    fn list_groups(&self) -> impl Future<Output = Result<Vec<GroupListing>, AdminError>> + Send;

    /// The offsets `group` committed.
    fn committed_offsets(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<PartitionOffsets, AdminError>> + Send;

    /// The log end offsets of `partitions`.
    fn end_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> impl Future<Output = Result<PartitionOffsets, AdminError>> + Send;

    /// The controller quorum.
    fn describe_quorum(&self) -> impl Future<Output = Result<QuorumInfo, AdminError>> + Send;

    /// Partition reassignments in progress.
    fn list_partition_reassignments(
        &self,
    ) -> impl Future<Output = Result<Reassignments, AdminError>> + Send;

    /// Preferred (or unclean) leader elections for `partitions`, every partition when `None`.
    fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<&[(String, i32)]>,
    ) -> impl Future<Output = Result<Vec<ElectionResult>, AdminError>> + Send;

    /// IncrementalAlterConfigs on one resource: SET `set`, DELETE `delete`.
    fn alter_configs(
        &self,
        resource_type: i8,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
}

impl Admin for AdminClient {
    fn metadata(
        &self,
        topics: Option<&[String]>,
    ) -> impl Future<Output = Result<ClusterMetadata, AdminError>> + Send {
        AdminClient::metadata(self, topics)
    }

    fn describe_configs(
        &self,
        resource_type: i8,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ConfigEntry>, AdminError>> + Send {
        AdminClient::describe_configs(self, resource_type, name)
    }

    fn list_groups(&self) -> impl Future<Output = Result<Vec<GroupListing>, AdminError>> + Send {
        AdminClient::list_groups(self)
    }

    fn committed_offsets(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<PartitionOffsets, AdminError>> + Send {
        AdminClient::committed_offsets(self, group)
    }

    fn end_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> impl Future<Output = Result<PartitionOffsets, AdminError>> + Send {
        AdminClient::end_offsets(self, partitions)
    }

    fn describe_quorum(&self) -> impl Future<Output = Result<QuorumInfo, AdminError>> + Send {
        AdminClient::describe_quorum(self)
    }

    fn list_partition_reassignments(
        &self,
    ) -> impl Future<Output = Result<Reassignments, AdminError>> + Send {
        AdminClient::list_partition_reassignments(self)
    }

    fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<&[(String, i32)]>,
    ) -> impl Future<Output = Result<Vec<ElectionResult>, AdminError>> + Send {
        AdminClient::elect_leaders(self, preferred, partitions)
    }

    fn alter_configs(
        &self,
        resource_type: i8,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> impl Future<Output = Result<(), AdminError>> + Send {
        AdminClient::alter_configs(self, resource_type, name, set, delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::{BrokerInfo, ReplicaState};

    /// A hand-made cluster: what a planner test would build.
    struct Fake {
        brokers: Vec<i32>,
        leader: i32,
    }

    impl Admin for Fake {
        async fn metadata(&self, _: Option<&[String]>) -> Result<ClusterMetadata, AdminError> {
            Ok(ClusterMetadata {
                brokers: self
                    .brokers
                    .iter()
                    .map(|id| BrokerInfo {
                        id: *id,
                        host: "b".into(),
                        port: 9092,
                        rack: None,
                    })
                    .collect(),
                ..ClusterMetadata::default()
            })
        }
        async fn describe_configs(&self, _: i8, _: &str) -> Result<Vec<ConfigEntry>, AdminError> {
            Ok(Vec::new())
        }
        async fn list_groups(&self) -> Result<Vec<GroupListing>, AdminError> {
            Ok(Vec::new())
        }
        async fn committed_offsets(&self, _: &str) -> Result<PartitionOffsets, AdminError> {
            Ok([(("t".to_string(), 0), 5)].into_iter().collect())
        }
        async fn end_offsets(&self, _: &[(String, i32)]) -> Result<PartitionOffsets, AdminError> {
            Ok([(("t".to_string(), 0), 9)].into_iter().collect())
        }
        async fn describe_quorum(&self) -> Result<QuorumInfo, AdminError> {
            Ok(QuorumInfo {
                leader_id: self.leader,
                leader_epoch: 1,
                high_watermark: 10,
                voters: self
                    .brokers
                    .iter()
                    .map(|id| ReplicaState {
                        replica_id: *id,
                        log_end_offset: 10,
                        last_fetch_ms: None,
                        last_caught_up_ms: None,
                    })
                    .collect(),
                observers: Vec::new(),
            })
        }
        async fn list_partition_reassignments(&self) -> Result<Reassignments, AdminError> {
            Ok(Reassignments::new())
        }
        async fn elect_leaders(
            &self,
            _: bool,
            _: Option<&[(String, i32)]>,
        ) -> Result<Vec<ElectionResult>, AdminError> {
            Ok(Vec::new())
        }
        async fn alter_configs(
            &self,
            _: i8,
            _: &str,
            _: &BTreeMap<String, String>,
            _: &[String],
        ) -> Result<(), AdminError> {
            Ok(())
        }
    }

    /// What a planner would compute from the trait alone: the lag of a group's partitions.
    async fn lag(admin: &impl Admin, group: &str) -> Result<i64, AdminError> {
        let committed = admin.committed_offsets(group).await?;
        let parts: Vec<(String, i32)> = committed.keys().cloned().collect();
        let ends = admin.end_offsets(&parts).await?;
        Ok(committed
            .iter()
            .map(|(k, c)| ends.get(k).map_or(0, |e| e - c))
            .sum())
    }

    fn assert_send<T: Send>(t: T) -> T {
        t
    }

    #[tokio::test]
    async fn a_fake_stands_in_for_the_client() {
        let fake = Fake {
            brokers: vec![0, 1, 2],
            leader: 1,
        };
        assert_eq!(assert_send(lag(&fake, "g")).await.unwrap(), 4);
        let q = fake.describe_quorum().await.unwrap();
        assert_eq!(q.leader_id, 1);
        assert_eq!(q.voters.len(), 3);
        assert_eq!(fake.metadata(None).await.unwrap().brokers.len(), 3);
    }

    #[test]
    fn the_client_futures_are_send() {
        let client = AdminClient::new("127.0.0.1:1", std::time::Duration::from_millis(10));
        // Never polled: only the types are checked.
        drop(assert_send(Admin::list_groups(&client)));
        drop(assert_send(Admin::committed_offsets(&client, "g")));
        drop(assert_send(Admin::end_offsets(&client, &[])));
        drop(assert_send(Admin::describe_quorum(&client)));
    }
}
