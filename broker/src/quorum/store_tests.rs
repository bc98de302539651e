//! Tests of the redb log store and the state machine: openraft's storage suite, then reopening
//! the file to check that log, vote, committed id and snapshot survive a restart.

// openraft's storage traits fix the error type (StorageError, ~224 bytes).
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, StorageError, Vote,
};
use redb::Database;
use tempfile::TempDir;

use super::log_store::{create_tables, io_err};
use super::*;
use crate::controller::MetadataCommand;

struct Builder;

fn open(dir: &TempDir) -> Result<(LogStore, StateMachine), StorageError<NodeId>> {
    let db = Arc::new(Database::create(dir.path().join("quorum.redb")).map_err(io_err)?);
    create_tables(&db).map_err(io_err)?;
    Ok((LogStore::new(db.clone()), StateMachine::open(db)?))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(io_err)?;
        let (log, sm) = open(&dir)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(term: u64, index: u64, command: Option<MetadataCommand>) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: match command {
            Some(c) => EntryPayload::Normal(c),
            None => EntryPayload::Blank,
        },
    }
}

fn register(id: i32) -> Option<MetadataCommand> {
    Some(MetadataCommand::RegisterBroker {
        id,
        host: format!("b{id}"),
        port: 9092,
        rack: None,
        incarnation_id: format!("i{id}"),
        replication: String::new(),
        listeners: Vec::new(),
    })
}

#[tokio::test]
async fn log_vote_and_snapshot_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, mut sm) = open(&dir).unwrap();
        let entries: Vec<Entry> = (1..=6)
            .map(|i| entry(1, i, register(i32::try_from(i).unwrap())))
            .collect();
        log.blocking_append(entries.clone()).await.unwrap();
        log.save_vote(&Vote::new_committed(3, 2)).await.unwrap();
        log.save_committed(Some(entries[3].log_id)).await.unwrap();
        // Truncate the uncommitted tail from 6 on, then append a new 6 of term 2.
        log.truncate(entries[5].log_id).await.unwrap();
        log.blocking_append([entry(2, 6, None)]).await.unwrap();
        // Apply 1..=4 and snapshot them, then purge 1..=2.
        let results = sm.apply(entries[..4].to_vec()).await.unwrap();
        assert_eq!(results, vec![Ok(()); 4]);
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id, Some(entries[3].log_id));
        log.purge(entries[1].log_id).await.unwrap();
        let image = sm.subscribe().borrow().clone();
        assert_eq!(image.version, 4);
        assert_eq!(image.brokers.len(), 4);
    }
    let (mut log, mut sm) = open(&dir).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(3, 2))
    );
    let committed = log.read_committed().await.unwrap();
    assert_eq!(committed.map(|c| c.index), Some(4));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
    assert_eq!(
        state.last_log_id,
        Some(LogId::new(CommittedLeaderId::new(2, 1), 6))
    );
    let read = log.try_get_log_entries(0..10).await.unwrap();
    let ids: Vec<(u64, u64)> = read
        .iter()
        .map(|e| (e.log_id.leader_id.term, e.log_id.index))
        .collect();
    assert_eq!(ids, vec![(1, 3), (1, 4), (1, 5), (2, 6)]);
    assert!(matches!(read[3].payload, EntryPayload::Blank));
    // The state machine restarts at the snapshot.
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(4));
    let image = sm.subscribe().borrow().clone();
    assert_eq!(image.version, 4);
    assert_eq!(
        image.brokers.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id.map(|l| l.index), Some(4));
}

#[tokio::test]
async fn installed_snapshot_replaces_the_image() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let (_, mut leader) = open(&leader_dir).unwrap();
    let (_, mut follower) = open(&follower_dir).unwrap();
    leader
        .apply([entry(1, 1, register(7)), entry(1, 2, register(8))])
        .await
        .unwrap();
    follower.apply([entry(1, 1, register(9))]).await.unwrap();
    let snap = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut image_rx = follower.subscribe();
    follower
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    assert!(image_rx.has_changed().unwrap());
    let image = image_rx.borrow_and_update().clone();
    assert_eq!(image.version, 2);
    assert_eq!(
        image.brokers.keys().copied().collect::<Vec<_>>(),
        vec![7, 8]
    );
    let (applied, _) = follower.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(2));
}
