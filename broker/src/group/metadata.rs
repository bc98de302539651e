//! Group metadata records of `__consumer_offsets`: what a group looked like when it last became
//! Stable (generation, protocol, leader, every member with its subscription and assignment) or
//! Empty, in Kafka's own layouts (GroupMetadataKey v2, GroupMetadataValue v0–3; written as v3),
//! so the coordinator comes back after a restart or a failover with its members and
//! generation and the consumers carry on heartbeating without a rebalance.
//!
//! Pure encoding and decoding; it never touches the log (see `offsets` for that).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Key version of group metadata records (OffsetCommitKey uses 0 and 1).
pub(super) const KEY_GROUP_V2: i16 = 2;
const VALUE_GROUP_V3: i16 = 3;

/// A group as stored: enough to serve the members of its current generation again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    /// Group id.
    pub group_id: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// Current generation.
    pub generation: i32,
    /// Selected assignor; None while Empty.
    pub protocol_name: Option<String>,
    /// Leader member id; None while Empty.
    pub leader: Option<String>,
    /// When the group entered this state, ms since the epoch.
    pub state_timestamp: i64,
    /// Members of the generation, in join order (none when Empty).
    pub members: Vec<StoredMember>,
}

/// A member of a [`StoredGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Metadata of the selected protocol (the subscription).
    pub subscription: Bytes,
    /// Assignment from the leader.
    pub assignment: Bytes,
}

/// GroupMetadataKey v2: version, group.
pub(super) fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + group.len());
    b.put_i16(KEY_GROUP_V2);
    put_str(&mut b, group);
    b.freeze()
}

/// GroupMetadataValue v3.
pub(super) fn group_value(g: &StoredGroup) -> Bytes {
    let mut b = BytesMut::with_capacity(64 + g.members.len() * 128);
    b.put_i16(VALUE_GROUP_V3);
    put_str(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    put_nullable(&mut b, g.protocol_name.as_deref());
    put_nullable(&mut b, g.leader.as_deref());
    b.put_i64(g.state_timestamp);
    b.put_i32(i32::try_from(g.members.len()).unwrap_or(i32::MAX));
    for m in &g.members {
        put_str(&mut b, &m.member_id);
        put_nullable(&mut b, m.instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// The group id of a GroupMetadataKey, or None for any other key.
pub(super) fn parse_group_key(mut k: Bytes) -> Option<String> {
    if k.remaining() < 2 || k.get_i16() != KEY_GROUP_V2 {
        return None;
    }
    get_str(&mut k)?
}

/// A GroupMetadataValue v0–3 (None if malformed or of another version).
pub(super) fn parse_group_value(group_id: String, mut v: Bytes) -> Option<StoredGroup> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=VALUE_GROUP_V3).contains(&version) {
        return None;
    }
    let protocol_type = get_str(&mut v)??;
    let generation = get_i32(&mut v)?;
    let protocol_name = get_str(&mut v)?;
    let leader = get_str(&mut v)?;
    let state_timestamp = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let count = get_i32(&mut v)?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_str(&mut v)??;
        let instance_id = if version >= 3 { get_str(&mut v)? } else { None };
        let client_id = get_str(&mut v)??;
        let client_host = get_str(&mut v)??;
        let session_then_rebalance = |v: &mut Bytes| -> Option<(i32, i32)> {
            if version >= 1 {
                let rebalance = get_i32(v)?;
                Some((get_i32(v)?, rebalance))
            } else {
                let session = get_i32(v)?;
                Some((session, session))
            }
        };
        let (session_timeout_ms, rebalance_timeout_ms) = session_then_rebalance(&mut v)?;
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(StoredMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(StoredGroup {
        group_id,
        protocol_type,
        generation,
        protocol_name,
        leader,
        state_timestamp,
        members,
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(s.as_bytes().get(..len).unwrap_or_default());
}

fn put_nullable(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, bytes: &[u8]) {
    b.put_i32(i32::try_from(bytes.len()).unwrap_or(i32::MAX));
    b.put_slice(bytes);
}

fn get_i32(v: &mut Bytes) -> Option<i32> {
    (v.remaining() >= 4).then(|| v.get_i32())
}

fn get_i64(v: &mut Bytes) -> Option<i64> {
    (v.remaining() >= 8).then(|| v.get_i64())
}

/// A nullable string: Some(None) for null, None when malformed.
fn get_str(v: &mut Bytes) -> Option<Option<String>> {
    if v.remaining() < 2 {
        return None;
    }
    let len = v.get_i16();
    if len < 0 {
        return Some(None);
    }
    let len = len as usize;
    if v.remaining() < len {
        return None;
    }
    String::from_utf8(v.split_to(len).to_vec()).ok().map(Some)
}

fn get_bytes(v: &mut Bytes) -> Option<Bytes> {
    let len = get_i32(v)?;
    if len < 0 {
        return Some(Bytes::new());
    }
    let len = len as usize;
    (v.remaining() >= len).then(|| v.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredGroup {
        StoredGroup {
            group_id: "g".into(),
            protocol_type: "consumer".into(),
            generation: 7,
            protocol_name: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp: 1_700_000_000_000,
            members: vec![
                StoredMember {
                    member_id: "m-1".into(),
                    instance_id: None,
                    client_id: "c1".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::from_static(b"sub-1"),
                    assignment: Bytes::from_static(b"asg-1"),
                },
                StoredMember {
                    member_id: "m-2".into(),
                    instance_id: Some("pod-2".into()),
                    client_id: "c2".into(),
                    client_host: "/127.0.0.2".into(),
                    rebalance_timeout_ms: 60_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub-2"),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    #[test]
    fn group_records_round_trip() {
        let g = sample();
        assert_eq!(parse_group_key(group_key("g")), Some("g".to_string()));
        assert_eq!(parse_group_value("g".into(), group_value(&g)), Some(g));
        let empty = StoredGroup {
            protocol_name: None,
            leader: None,
            members: vec![],
            ..sample()
        };
        assert_eq!(
            parse_group_value("g".into(), group_value(&empty)),
            Some(empty)
        );
    }

    #[test]
    fn the_layout_is_kafkas() {
        // GroupMetadataKey v2 "g": version 2, string length 1, 'g'.
        assert_eq!(&group_key("g")[..], &[0, 2, 0, 1, b'g']);
        let v = group_value(&StoredGroup {
            members: vec![],
            ..sample()
        });
        let mut want = vec![0, 3, 0, 8];
        want.extend_from_slice(b"consumer");
        want.extend_from_slice(&7i32.to_be_bytes());
        want.extend_from_slice(&[0, 5]);
        want.extend_from_slice(b"range");
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(b"m-1");
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(&v[..], &want[..]);
    }

    #[test]
    fn offset_keys_and_damaged_values_are_not_groups() {
        let mut offset_key = BytesMut::new();
        offset_key.put_i16(1);
        put_str(&mut offset_key, "g");
        assert_eq!(parse_group_key(offset_key.freeze()), None);
        let full = group_value(&sample());
        for cut in [0, 1, 5, full.len() / 2, full.len() - 1] {
            assert_eq!(
                parse_group_value("g".into(), full.slice(..cut)),
                None,
                "cut at {cut}"
            );
        }
        let mut future = full.to_vec();
        future[1] = 9;
        assert_eq!(parse_group_value("g".into(), Bytes::from(future)), None);
    }
}
