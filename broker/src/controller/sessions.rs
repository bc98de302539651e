//! Broker sessions on the controller leader: when each broker was last heard from, which
//! unfenced brokers have been silent longer than the session timeout, and which session stream
//! is each broker's current one, so that only the end of that stream fences the broker. Time is
//! passed in, never read here, so the rules are tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::image::MetadataImage;

/// Identifies one session stream on this controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(u64);

/// Why a broker's session stream ended on the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The broker closed it (a graceful end: the broker is going away).
    Closed,
    /// The connection broke (reset, closed, a transport error): the process likely died.
    Broken,
    /// This controller is no longer the leader: the broker reconnects to the new one.
    LeadershipLost,
    /// This controller is stopping.
    ShuttingDown,
}

/// Last heartbeat per broker and each broker's current session stream, kept by the controller
/// leader.
#[derive(Debug)]
pub struct Sessions {
    timeout: Duration,
    /// When this controller became leader: brokers not heard since count from here.
    since: Instant,
    last_seen: HashMap<i32, Instant>,
    /// The current stream of each broker, and the incarnation that opened it.
    streams: HashMap<i32, (StreamId, String)>,
    next_stream: u64,
    /// After a failover: the broker that ran in the old leader's process, and the shorter time
    /// it has to open a session with this leader before it is fenced.
    suspect: Option<(i32, Duration)>,
}

impl Sessions {
    /// Sessions that expire after `timeout` without a heartbeat.
    pub fn new(timeout: Duration, now: Instant) -> Sessions {
        Sessions {
            timeout,
            since: now,
            last_seen: HashMap::new(),
            streams: HashMap::new(),
            next_stream: 0,
            suspect: None,
        }
    }

    /// A new stream id, for a stream that is not yet any broker's session.
    pub fn new_stream(&mut self) -> StreamId {
        self.next_stream += 1;
        StreamId(self.next_stream)
    }

    /// `stream` carried a valid heartbeat of `broker`'s `incarnation` at `now`: it is that
    /// broker's current stream from now on (replacing any older one) and the broker was heard.
    pub fn stream_heartbeat(
        &mut self,
        broker: i32,
        incarnation: &str,
        stream: StreamId,
        now: Instant,
    ) {
        self.heard(broker, now);
        let current = self
            .streams
            .get(&broker)
            .is_some_and(|(s, i)| *s == stream && i == incarnation);
        if !current {
            self.streams
                .insert(broker, (stream, incarnation.to_string()));
        }
    }

    /// The incarnation whose stream is `broker`'s current session, if any.
    pub fn current_incarnation(&self, broker: i32) -> Option<&str> {
        self.streams.get(&broker).map(|(_, i)| i.as_str())
    }

    /// `stream` ended for the reason given. When it was `broker`'s current stream it stops
    /// being so; when, besides, the broker closed it or its connection broke, returns the
    /// incarnation to fence. A stream that was replaced, or that ended because leadership moved
    /// or this controller stops, fences nothing.
    pub fn stream_ended(
        &mut self,
        broker: i32,
        stream: StreamId,
        why: StreamEnd,
    ) -> Option<String> {
        let current = self.streams.get(&broker).is_some_and(|(s, _)| *s == stream);
        if !current {
            return None;
        }
        let (_, incarnation) = self.streams.remove(&broker)?;
        match why {
            StreamEnd::Closed | StreamEnd::Broken => Some(incarnation),
            StreamEnd::LeadershipLost | StreamEnd::ShuttingDown => None,
        }
    }

    /// A new controller leader gives every broker a fresh session starting `now`, so a
    /// controller failover does not fence brokers whose heartbeats went to the old leader.
    pub fn reset(&mut self, now: Instant) {
        self.since = now;
        self.last_seen.clear();
        self.suspect = None;
    }

    /// [`Sessions::reset`] after the previous controller leader `previous` went away: the
    /// broker of the same id (the same process, when it runs both roles) gets only `grace` to
    /// open a session with this leader. A live one does so at once (the old leader ends its
    /// stream when it loses the leadership, and a cut-off one should be fenced anyway); a dead
    /// one would otherwise hold its partitions for a whole session timeout, since no broken
    /// stream of it ever reaches this leader.
    pub fn reset_after_failover(&mut self, now: Instant, previous: Option<i32>, grace: Duration) {
        self.reset(now);
        self.suspect = previous.map(|b| (b, grace.min(self.timeout)));
    }

    /// A heartbeat (or registration) from `broker` at `now`.
    pub fn heard(&mut self, broker: i32, now: Instant) {
        self.last_seen.insert(broker, now);
    }

    /// Unfenced brokers of `image` not heard from within the timeout at `now`, in id order.
    pub fn expired(&self, image: &MetadataImage, now: Instant) -> Vec<i32> {
        image
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .filter(|(id, _)| match self.last_seen.get(id) {
                Some(seen) => now.saturating_duration_since(*seen) >= self.timeout,
                None => {
                    let timeout = match self.suspect {
                        Some((b, grace)) if b == **id => grace,
                        _ => self.timeout,
                    };
                    now.saturating_duration_since(self.since) >= timeout
                }
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{apply, MetadataCommand};

    fn image_with(ids: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in ids {
            let reg = MetadataCommand::RegisterBroker {
                id: *id,
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation_id: format!("i{id}"),
                replication: String::new(),
                listeners: Vec::new(),
            };
            apply(&mut image, &reg).unwrap();
            apply(&mut image, &MetadataCommand::UnfenceBroker { id: *id }).unwrap();
        }
        image
    }

    #[test]
    fn silent_brokers_expire_and_heartbeats_keep_sessions() {
        let t0 = Instant::now();
        let image = image_with(&[1, 2, 3]);
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        s.heard(1, t0 + Duration::from_secs(5));
        s.heard(2, t0 + Duration::from_secs(8));
        assert!(s.expired(&image, t0 + Duration::from_secs(8)).is_empty());
        // 3 was never heard: its session counts from t0.
        assert_eq!(s.expired(&image, t0 + Duration::from_secs(9)), vec![3]);
        assert_eq!(
            s.expired(&image, t0 + Duration::from_secs(14)),
            vec![1, 3],
            "1 was last heard at 5 s"
        );
        assert_eq!(
            s.expired(&image, t0 + Duration::from_secs(17)),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn only_the_current_stream_of_a_broker_fences_it() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        let a = s.new_stream();
        let b = s.new_stream();
        assert_ne!(a, b);
        s.stream_heartbeat(1, "i1", a, t0);
        // The broker reconnects (same incarnation) before the old stream's end is noticed.
        s.stream_heartbeat(1, "i1", b, t0 + Duration::from_secs(1));
        assert_eq!(
            s.stream_ended(1, a, StreamEnd::Broken),
            None,
            "a replaced stream"
        );
        assert_eq!(
            s.stream_ended(1, b, StreamEnd::Broken),
            Some("i1".to_string())
        );
        // Its end is reported once.
        assert_eq!(s.stream_ended(1, b, StreamEnd::Broken), None);
        // A stream that never carried a valid heartbeat fences nothing.
        let c = s.new_stream();
        assert_eq!(s.stream_ended(1, c, StreamEnd::Closed), None);
    }

    #[test]
    fn a_restarted_broker_is_fenced_only_for_its_own_stream() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        let old = s.new_stream();
        s.stream_heartbeat(1, "old", old, t0);
        let new = s.new_stream();
        s.stream_heartbeat(1, "new", new, t0);
        assert_eq!(s.stream_ended(1, old, StreamEnd::Broken), None);
        assert_eq!(
            s.stream_ended(1, new, StreamEnd::Closed),
            Some("new".to_string()),
            "a graceful close fences too: the broker is going away"
        );
        // The same stream reopened by another incarnation (not possible on the wire, but the
        // incarnation is what a fence names): the latest one counts.
        let x = s.new_stream();
        s.stream_heartbeat(2, "a", x, t0);
        s.stream_heartbeat(2, "b", x, t0);
        assert_eq!(
            s.stream_ended(2, x, StreamEnd::Broken),
            Some("b".to_string())
        );
    }

    #[test]
    fn leadership_moves_and_shutdowns_do_not_fence() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        for (broker, why) in [(1, StreamEnd::LeadershipLost), (2, StreamEnd::ShuttingDown)] {
            let id = s.new_stream();
            s.stream_heartbeat(broker, "i", id, t0);
            assert_eq!(s.stream_ended(broker, id, why), None);
            // No longer current: a later report of the same stream fences nothing either.
            assert_eq!(s.stream_ended(broker, id, StreamEnd::Broken), None);
        }
    }

    #[test]
    fn stream_heartbeats_keep_the_session() {
        let t0 = Instant::now();
        let image = image_with(&[1]);
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        let id = s.new_stream();
        s.stream_heartbeat(1, "i1", id, t0 + Duration::from_secs(8));
        assert!(s.expired(&image, t0 + Duration::from_secs(16)).is_empty());
        assert_eq!(s.expired(&image, t0 + Duration::from_secs(17)), vec![1]);
    }

    #[test]
    fn fenced_brokers_are_not_expired_again_and_reset_gives_fresh_sessions() {
        let t0 = Instant::now();
        let mut image = image_with(&[1, 2]);
        apply(
            &mut image,
            &MetadataCommand::FenceBroker {
                id: 2,
                incarnation: None,
            },
        )
        .unwrap();
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        assert_eq!(s.expired(&image, t0 + Duration::from_secs(20)), vec![1]);
        s.reset(t0 + Duration::from_secs(20));
        assert!(s.expired(&image, t0 + Duration::from_secs(28)).is_empty());
        assert_eq!(s.expired(&image, t0 + Duration::from_secs(29)), vec![1]);
    }

    #[test]
    fn after_a_failover_the_old_leaders_broker_has_only_the_grace_to_come_back() {
        let t0 = Instant::now();
        let image = image_with(&[1, 2, 3]);
        let mut s = Sessions::new(Duration::from_secs(9), t0);
        s.reset_after_failover(t0, Some(1), Duration::from_millis(1500));
        let at = |ms| t0 + Duration::from_millis(ms);
        s.heard(2, at(300));
        assert!(s.expired(&image, at(1499)).is_empty());
        assert_eq!(s.expired(&image, at(1500)), vec![1], "1 never came back");
        // Broker 1 was alive after all: once heard, it has the whole session timeout.
        let mut alive = Sessions::new(Duration::from_secs(9), t0);
        alive.reset_after_failover(t0, Some(1), Duration::from_millis(1500));
        alive.heard(1, at(400));
        alive.heard(2, at(400));
        alive.heard(3, at(400));
        assert!(alive.expired(&image, at(9399)).is_empty());
        // 3 has the full timeout from the reset; a plain reset forgets the suspect.
        assert_eq!(s.expired(&image, at(9000)), vec![1, 3]);
        s.reset(at(9000));
        assert!(s.expired(&image, at(10_600)).is_empty());
    }
}
