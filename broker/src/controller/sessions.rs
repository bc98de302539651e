//! Broker sessions on the controller leader: when each broker was last heard from, and which
//! unfenced brokers have been silent longer than the session timeout. Time is passed in, never
//! read here, so the rules are tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::image::MetadataImage;

/// Last heartbeat per broker, kept only by the controller leader.
#[derive(Debug)]
pub struct Sessions {
    timeout: Duration,
    /// When this controller became leader: brokers not heard since count from here.
    since: Instant,
    last_seen: HashMap<i32, Instant>,
}

impl Sessions {
    /// Sessions that expire after `timeout` without a heartbeat.
    pub fn new(timeout: Duration, now: Instant) -> Sessions {
        Sessions {
            timeout,
            since: now,
            last_seen: HashMap::new(),
        }
    }

    /// A new controller leader gives every broker a fresh session starting `now`, so a
    /// controller failover does not fence brokers whose heartbeats went to the old leader.
    pub fn reset(&mut self, now: Instant) {
        self.since = now;
        self.last_seen.clear();
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
            .filter(|(id, _)| {
                let seen = self.last_seen.get(id).copied().unwrap_or(self.since);
                now.saturating_duration_since(seen) >= self.timeout
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
}
