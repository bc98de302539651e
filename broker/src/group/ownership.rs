//! Which `__consumer_offsets` partitions this broker coordinates, in a cluster.
//!
//! The coordinator of a group is the leader of its offsets partition. The loader compares the
//! partitions this broker leads (with their leader epochs) with the ones whose groups it holds
//! in memory: a partition it came to lead is replayed and then served, one it stopped leading
//! (or now leads at another epoch, after someone else led it in between) is dropped. Pure rules
//! on plain data; `Groups` does the locking and the I/O.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// How far a partition's groups are in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Being replayed from the log, for the leadership at this epoch.
    Loading(i32),
    /// Served, as of the leadership at this epoch.
    Loaded(i32),
}

impl Load {
    fn epoch(self) -> i32 {
        match self {
            Load::Loading(e) | Load::Loaded(e) => e,
        }
    }
}

/// What the loader must do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Partitions whose groups must leave memory.
    pub unload: Vec<i32>,
    /// Partitions to replay, with the leader epoch they are led at.
    pub load: Vec<(i32, i32)>,
}

/// The offsets partitions whose groups this broker holds.
#[derive(Debug, Default)]
pub struct Ownership {
    /// The offsets topic (id, partition count) the partitions belong to: a group's partition
    /// depends on the count, and a topic deleted and created again starts over.
    topic: Option<(Uuid, i32)>,
    partitions: BTreeMap<i32, Load>,
}

impl Ownership {
    /// The offsets topic the partitions belong to.
    pub fn topic(&self) -> Option<(Uuid, i32)> {
        self.topic
    }

    /// What to do so that memory holds exactly the partitions in `led` (partition → leader
    /// epoch of the partitions this broker leads) of `topic`. A partition held at another
    /// epoch is unloaded and loaded again: another broker may have written to it in between.
    /// Another topic than the one held unloads everything.
    pub fn plan(&self, topic: Option<(Uuid, i32)>, led: &BTreeMap<i32, i32>) -> Plan {
        let same = self.topic == topic;
        let unload = self
            .partitions
            .iter()
            .filter(|(p, l)| !same || led.get(p) != Some(&l.epoch()))
            .map(|(p, _)| *p)
            .collect();
        let load = led
            .iter()
            .filter(|(p, e)| !same || self.partitions.get(p).map(|l| l.epoch()) != Some(**e))
            .map(|(p, e)| (*p, *e))
            .collect();
        Plan { unload, load }
    }

    /// Forgets `partitions`, and everything when `topic` is another one than held (which it
    /// then holds, with nothing loaded yet).
    pub fn drop_partitions(&mut self, topic: Option<(Uuid, i32)>, partitions: &[i32]) {
        if self.topic != topic {
            self.topic = topic;
            self.partitions.clear();
        }
        for p in partitions {
            self.partitions.remove(p);
        }
    }

    /// Records how far `partition` is.
    pub fn set(&mut self, partition: i32, load: Load) {
        self.partitions.insert(partition, load);
    }

    /// Forgets one partition (a load that failed, to be tried again).
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// The partitions whose groups are served.
    pub fn loaded(&self) -> BTreeSet<i32> {
        self.partitions
            .iter()
            .filter(|(_, l)| matches!(l, Load::Loaded(_)))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether some partition is being replayed.
    pub fn loading(&self) -> bool {
        self.partitions
            .values()
            .any(|l| matches!(l, Load::Loading(_)))
    }

    /// Whether this broker may serve a group of `partition` of `topic`, given the leader epoch
    /// it leads the partition at (None: it does not lead it): the epoch the group's writes must
    /// carry, or NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while the partition of this
    /// leadership is not served yet.
    pub fn status(
        &self,
        topic: (Uuid, i32),
        partition: i32,
        leading: Option<i32>,
    ) -> Result<i32, i16> {
        let Some(epoch) = leading else {
            return Err(ResponseError::NotCoordinator.code());
        };
        if self.topic == Some(topic)
            && self.partitions.get(&partition) == Some(&Load::Loaded(epoch))
        {
            Ok(epoch)
        } else {
            Err(ResponseError::CoordinatorLoadInProgress.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_COORDINATOR: i16 = ResponseError::NotCoordinator.code();
    const LOADING: i16 = ResponseError::CoordinatorLoadInProgress.code();

    fn led(list: &[(i32, i32)]) -> BTreeMap<i32, i32> {
        list.iter().copied().collect()
    }

    #[test]
    fn gained_partitions_load_lost_ones_unload_and_new_epochs_reload() {
        let t = Some((Uuid::from_u128(1), 6));
        let mut own = Ownership::default();
        let plan = own.plan(t, &led(&[(0, 0), (3, 2)]));
        assert_eq!(
            plan,
            Plan {
                unload: vec![],
                load: vec![(0, 0), (3, 2)]
            }
        );
        own.drop_partitions(t, &plan.unload);
        own.set(0, Load::Loading(0));
        own.set(3, Load::Loaded(2));
        assert!(own.loading());
        own.set(0, Load::Loaded(0));
        assert!(!own.loading());
        assert_eq!(own.loaded(), BTreeSet::from([0, 3]));
        assert_eq!(own.plan(t, &led(&[(0, 0), (3, 2)])), Plan::default());

        // Lost 0, still 3, gained 5; 3 again at a newer epoch: unloaded and loaded again.
        let plan = own.plan(t, &led(&[(3, 4), (5, 1)]));
        assert_eq!(
            plan,
            Plan {
                unload: vec![0, 3],
                load: vec![(3, 4), (5, 1)]
            }
        );
        own.drop_partitions(t, &plan.unload);
        assert!(own.loaded().is_empty());
    }

    #[test]
    fn another_offsets_topic_unloads_everything() {
        let old = Some((Uuid::from_u128(1), 6));
        let new = Some((Uuid::from_u128(2), 6));
        let mut own = Ownership::default();
        own.drop_partitions(old, &[]);
        own.set(1, Load::Loaded(0));
        let plan = own.plan(new, &led(&[(1, 0)]));
        assert_eq!(
            plan,
            Plan {
                unload: vec![1],
                load: vec![(1, 0)]
            }
        );
        own.drop_partitions(new, &plan.unload);
        assert_eq!(own.topic(), new);
        assert!(own.loaded().is_empty());
        // The topic is gone: everything goes, nothing loads.
        own.set(1, Load::Loaded(0));
        let plan = own.plan(None, &led(&[]));
        assert_eq!(plan.unload, vec![1]);
        assert!(plan.load.is_empty());
    }

    #[test]
    fn a_group_is_served_only_by_the_leader_once_loaded_at_its_epoch() {
        let t = (Uuid::from_u128(1), 6);
        let mut own = Ownership::default();
        own.drop_partitions(Some(t), &[]);
        assert_eq!(own.status(t, 2, None), Err(NOT_COORDINATOR));
        assert_eq!(
            own.status(t, 2, Some(0)),
            Err(LOADING),
            "led, not loaded yet"
        );
        own.set(2, Load::Loading(0));
        assert_eq!(own.status(t, 2, Some(0)), Err(LOADING));
        own.set(2, Load::Loaded(0));
        assert_eq!(own.status(t, 2, Some(0)), Ok(0));
        assert_eq!(own.status(t, 2, None), Err(NOT_COORDINATOR), "lost it");
        assert_eq!(
            own.status(t, 2, Some(1)),
            Err(LOADING),
            "led again at another epoch: must be loaded again"
        );
        let other = (Uuid::from_u128(9), 6);
        assert_eq!(own.status(other, 2, Some(0)), Err(LOADING));
    }
}
