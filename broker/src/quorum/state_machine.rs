//! The Raft state machine: applies committed metadata commands to the in-memory image,
//! publishes the image after every applied batch that may have changed it, and keeps snapshots
//! in redb. On start the image is the last snapshot; openraft then re-applies the committed log
//! after it.
//!
//! A batch whose every entry is a refused command (refusals change nothing) is not published:
//! nobody waits for the index of a refused command (its proposer gets the refusal), so watchers
//! and metadata streams are not woken for an identical image. The published version is then
//! the index of the last batch that was published, not of the last applied entry.

// openraft's storage traits fix the error type (StorageError, ~224 bytes).
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StoredMembership,
};
use parking_lot::Mutex;
use redb::Database;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::log_store::{blocking, get_meta, io_err, put_meta};
use super::{Entry, NodeId, TypeConfig};
use crate::controller::{self, ApplyResult, MetadataImage};

const SNAPSHOT: &str = "snapshot";

/// A snapshot as stored in redb and sent to followers: openraft's meta and the image.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    /// JSON of the image.
    data: Vec<u8>,
}

struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    image: MetadataImage,
    snapshots_built: u64,
}

/// The metadata state machine; clones share state (a clone is the snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    applied: Arc<Mutex<Applied>>,
    image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
}

impl StateMachine {
    /// Opens the state machine at the last snapshot stored in `db`.
    pub fn open(db: Arc<Database>) -> Result<StateMachine, StorageError<NodeId>> {
        let mut applied = Applied {
            last_applied: None,
            membership: StoredMembership::default(),
            image: MetadataImage::default(),
            snapshots_built: 0,
        };
        if let Some(snap) = get_meta::<StoredSnapshot>(&db, SNAPSHOT)? {
            applied.image = serde_json::from_slice(&snap.data).map_err(io_err)?;
            applied.last_applied = snap.meta.last_log_id;
            applied.membership = snap.meta.last_membership;
        }
        let (tx, _) = watch::channel(Arc::new(applied.image.clone()));
        Ok(StateMachine {
            db,
            applied: Arc::new(Mutex::new(applied)),
            image_tx: Arc::new(tx),
        })
    }

    /// A receiver of every applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    fn publish(&self, image: MetadataImage) {
        self.image_tx.send_replace(Arc::new(image));
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (meta, data) = {
            let mut a = self.applied.lock();
            a.snapshots_built += 1;
            let snapshot_id = match a.last_applied {
                Some(id) => format!("{}-{}-{}", id.leader_id, id.index, a.snapshots_built),
                None => format!("none-{}", a.snapshots_built),
            };
            let meta = SnapshotMeta {
                last_log_id: a.last_applied,
                last_membership: a.membership.clone(),
                snapshot_id,
            };
            (meta, serde_json::to_vec(&a.image).map_err(io_err)?)
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        blocking(&self.db, move |db| put_meta(db, SNAPSHOT, &stored)).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let a = self.applied.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let (image, results) = {
            let mut a = self.applied.lock();
            let mut results = Vec::new();
            // Whether an entry of the batch may have changed the image or someone may wait for
            // its index: anything but a refused command.
            let mut changed = false;
            for entry in entries {
                a.last_applied = Some(entry.log_id);
                a.image.version = entry.log_id.index;
                let result = match entry.payload {
                    EntryPayload::Blank => {
                        changed = true;
                        Ok(())
                    }
                    EntryPayload::Normal(command) => {
                        let result = controller::apply(&mut a.image, &command);
                        if let Err(refusal) = &result {
                            tracing::info!(
                                index = entry.log_id.index,
                                ?command,
                                "refused: {refusal}"
                            );
                        }
                        changed |= result.is_ok();
                        result
                    }
                    EntryPayload::Membership(m) => {
                        changed = true;
                        a.membership = StoredMembership::new(Some(entry.log_id), m);
                        Ok(())
                    }
                };
                results.push(result);
            }
            (changed.then(|| a.image.clone()), results)
        };
        if let Some(image) = image {
            self.publish(image);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let mut image: MetadataImage = serde_json::from_slice(&data).map_err(io_err)?;
        image.version = meta.last_log_id.map_or(0, |id| id.index);
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        blocking(&self.db, move |db| put_meta(db, SNAPSHOT, &stored)).await?;
        {
            let mut a = self.applied.lock();
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
            a.image = image.clone();
        }
        self.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(
            get_meta::<StoredSnapshot>(&self.db, SNAPSHOT)?.map(|s| Snapshot {
                meta: s.meta,
                snapshot: Box::new(Cursor::new(s.data)),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;
    use crate::controller::MetadataCommand;

    fn entry(index: u64, command: MetadataCommand) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(command),
        }
    }

    fn refused_alter(broker_id: i32) -> MetadataCommand {
        MetadataCommand::AlterPartition {
            topic: "gone".into(),
            partition: 0,
            broker_id,
            leader_epoch: 0,
            partition_epoch: 0,
            new_isr: vec![broker_id],
        }
    }

    #[tokio::test]
    async fn batches_of_refused_commands_are_not_published() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("q.redb")).unwrap());
        super::super::log_store::create_tables(&db).unwrap();
        let mut sm = StateMachine::open(db).unwrap();
        let mut rx = sm.subscribe();
        let register = MetadataCommand::RegisterBroker {
            id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation_id: "i".into(),
            replication: String::new(),
            listeners: Vec::new(),
        };
        sm.apply([entry(1, register)]).await.unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().version, 1);

        // A fenced leader's stream of refused ISR changes: nothing to publish.
        let results = sm
            .apply((2..=50).map(|i| entry(i, refused_alter(1))))
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.is_err()));
        assert!(
            !rx.has_changed().unwrap(),
            "an unchanged image was published"
        );
        assert_eq!(rx.borrow().version, 1);
        assert_eq!(
            sm.applied_state().await.unwrap().0.map(|l| l.index),
            Some(50)
        );

        // One accepted command in a batch publishes it, at the batch's last index.
        sm.apply([
            entry(51, refused_alter(1)),
            entry(52, MetadataCommand::UnfenceBroker { id: 1 }),
            entry(53, refused_alter(1)),
        ])
        .await
        .unwrap();
        assert!(rx.has_changed().unwrap());
        let image = rx.borrow_and_update().clone();
        assert_eq!(image.version, 53);
        assert!(!image.brokers[&1].fenced);
        // A snapshot holds the last applied index even when it was not published.
        sm.apply([entry(54, refused_alter(1))]).await.unwrap();
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(54));
    }
}
