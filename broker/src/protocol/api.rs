//! The one table of Kafka APIs this broker serves, with the version range of each.
//!
//! ApiVersions is derived from this table, so the broker never advertises an API or a version that
//! its handlers do not serve. This module must never list a version a handler does not honour.

use kafka_protocol::messages::ApiKey;

/// One handled API and the versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// Every API the broker serves. Notes on the bounds:
/// - Produce starts at 0 because old librdkafka only enables compression when v0 is covered;
///   v0–2 are answered with UNSUPPORTED_VERSION (the v2 message format is required), as Kafka 4 does.
///   v12+ (KIP-890 transactions v2, topic ids) is not served.
/// - Fetch stops at 12: v13+ identifies topics by id only.
/// - ListOffsets stops at 7: v8+ adds tiered-storage timestamps.
/// - DescribeLogDirs starts at 1, as Kafka 4 (and the codec) do.
/// - SaslHandshake starts at 0: librdkafka enables SASL only when v0 is covered. After a v0
///   handshake the tokens come as bare frames (the connection handles them).
/// - DescribeClientQuotas answers that no entity has a quota (quotas are not implemented).
/// - The ACL APIs start at 1 (v0 predates pattern types), as Kafka 4 does.
pub const HANDLED_APIS: &[ApiRange] = &[
    api(ApiKey::Produce, 0, 11),
    api(ApiKey::Fetch, 4, 12),
    api(ApiKey::ListOffsets, 1, 7),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    api(ApiKey::ListGroups, 0, 4),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::UnregisterBroker, 0, 0),
    api(ApiKey::DescribeQuorum, 0, 2),
    api(ApiKey::AddRaftVoter, 0, 0),
    api(ApiKey::RemoveRaftVoter, 0, 0),
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
];

/// Produce versions below this are advertised (for librdkafka's feature detection) but answered
/// with UNSUPPORTED_VERSION: they predate the v2 record batch format.
pub const PRODUCE_MIN_SERVED: i16 = 3;

/// The served range of `key`, if the API is handled at all.
pub fn served_range(key: ApiKey) -> Option<ApiRange> {
    HANDLED_APIS.iter().copied().find(|r| r.key == key)
}

/// Whether `version` of `key` is advertised.
pub fn is_advertised(key: ApiKey, version: i16) -> bool {
    served_range(key).is_some_and(|r| (r.min..=r.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_what_the_codec_can_decode() {
        for r in HANDLED_APIS {
            let valid = r.key.valid_versions();
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_SERVED
            } else {
                r.min
            };
            assert!(
                min >= valid.min && r.max <= valid.max,
                "{:?} {}..{}",
                r.key,
                r.min,
                r.max
            );
            assert!(r.min <= r.max);
        }
        let mut keys: Vec<i16> = HANDLED_APIS.iter().map(|r| r.key as i16).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), HANDLED_APIS.len(), "an API is listed twice");
    }

    #[test]
    fn client_floors_are_covered() {
        // librdkafka feature detection and kafka-python 2.0.2's hard-coded versions.
        for (key, v) in [
            (ApiKey::Produce, 0),
            (ApiKey::Produce, 3),
            (ApiKey::Produce, 7),
            (ApiKey::Fetch, 4),
            (ApiKey::Fetch, 10),
            (ApiKey::ListOffsets, 1),
            (ApiKey::Metadata, 0),
            (ApiKey::Metadata, 1),
            (ApiKey::Metadata, 4),
            (ApiKey::ApiVersions, 0),
        ] {
            assert!(is_advertised(key, v), "{key:?} v{v}");
        }
        assert!(!is_advertised(ApiKey::Fetch, 13));
        assert!(!is_advertised(ApiKey::EndTxn, 0));
    }

    #[test]
    fn fetch_responses_are_encodable_in_every_advertised_version() {
        let range = served_range(ApiKey::Fetch).unwrap();
        assert!(super::super::fetch_wire::VERSIONS.contains(&range.min));
        assert!(super::super::fetch_wire::VERSIONS.contains(&range.max));
    }
}
