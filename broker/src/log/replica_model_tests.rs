//! Model-based test of the replication primitives: random producer appends with changing
//! epochs, replicated appends (with gaps and refused overlaps), truncations, full truncations,
//! rolls at small `segment.bytes`, and reopens after close and after a crash, each followed by
//! comparing reads, offsets, the epoch cache and `end_offset_for_epoch` with a flat model;
//! reads held across an operation must still return the bytes they were given.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::testutil::*;
use super::*;

/// One stored batch of the model.
#[derive(Debug, Clone)]
struct Stored {
    base: i64,
    last: i64,
    epoch: i32,
    bytes: Vec<u8>,
}

/// The log as a flat list of batches.
#[derive(Debug, Default)]
struct Model {
    start: i64,
    batches: Vec<Stored>,
}

impl Model {
    fn end(&self) -> i64 {
        self.batches.last().map_or(self.start, |b| b.last + 1)
    }

    fn truncate_to(&mut self, offset: i64) {
        if offset >= self.end() {
            return;
        }
        if offset < self.start {
            self.start = offset;
            self.batches.clear();
            return;
        }
        self.batches.retain(|b| b.last < offset);
    }

    fn epochs(&self) -> Vec<EpochEntry> {
        let mut out: Vec<EpochEntry> = Vec::new();
        for b in &self.batches {
            if b.epoch >= 0 && out.last().is_none_or(|l| l.epoch < b.epoch) {
                out.push(EpochEntry {
                    epoch: b.epoch,
                    start_offset: b.base,
                });
            }
        }
        out
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let epochs = self.epochs();
        let floor = epochs.iter().rposition(|e| e.epoch <= epoch)?;
        let end = epochs
            .get(floor + 1)
            .map_or(self.end(), |next| next.start_offset);
        Some((epochs[floor].epoch, end))
    }

    /// What `Log::read(offset, max_bytes, i64::MAX)` returns; `None` for out of range.
    fn read(&self, offset: i64, max_bytes: usize) -> Option<Vec<u8>> {
        if offset < self.start || offset > self.end() {
            return None;
        }
        let mut out = Vec::new();
        for b in self.batches.iter().filter(|b| b.last >= offset) {
            if !out.is_empty() && out.len() + b.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        Some(out)
    }
}

fn check(log: &Log, model: &Model, rng: &mut u64, step: usize) {
    let ctx = format!("step {step}");
    assert_eq!(log.log_start_offset(), model.start, "{ctx}: log start");
    assert_eq!(log.log_end_offset(), model.end(), "{ctx}: log end");
    assert_eq!(
        log.epoch_entries(),
        model.epochs().as_slice(),
        "{ctx}: epochs"
    );
    let latest = model.epochs().last().map_or(0, |e| e.epoch);
    for epoch in -1..=latest + 1 {
        assert_eq!(
            log.end_offset_for_epoch(epoch),
            model.end_offset_for_epoch(epoch),
            "{ctx}: end offset for epoch {epoch}"
        );
    }
    let all = log.read(model.start, usize::MAX, i64::MAX).unwrap();
    assert_eq!(
        Some(all.to_vec()),
        model.read(model.start, usize::MAX),
        "{ctx}: whole log"
    );
    for _ in 0..4 {
        let span = (model.end() - model.start + 3) as u64;
        let offset = model.start - 1 + (next_rand(rng) % span) as i64;
        let max_bytes = (next_rand(rng) % 600) as usize;
        let got = log
            .read(offset, max_bytes, i64::MAX)
            .ok()
            .map(|b| b.to_vec());
        assert_eq!(
            got,
            model.read(offset, max_bytes),
            "{ctx}: read {offset} max {max_bytes}"
        );
    }
}

fn run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seed;
    let config = LogConfig {
        segment_bytes: 300 + next_rand(&mut rng) % 400,
        index_interval_bytes: [0, 64, 4096][(next_rand(&mut rng) % 3) as usize],
        ..config()
    };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    let mut model = Model::default();
    let mut epoch = 0i32;
    for step in 0..steps {
        // Now and then a fetch reply holds slices of the whole log across the next operation;
        // whatever happens to the log, it must still send what it was given.
        let held = (next_rand(&mut rng) % 4 == 0).then(|| {
            let slices = log.read_slices(model.start, usize::MAX, i64::MAX).unwrap();
            (slices, model.read(model.start, usize::MAX).unwrap())
        });
        if next_rand(&mut rng) % 5 == 0 {
            epoch += 1;
        }
        let roll = next_rand(&mut rng) % 100;
        let records = 1 + (next_rand(&mut rng) % 4) as usize;
        let tag = format!("s{seed}-{step}");
        match roll {
            0..=29 => {
                // A producer append; now and then from a stale leader epoch.
                let e = if roll < 3 { epoch - 1 } else { epoch };
                let batch = simple_batch(&tag, records, NOW + step as i64);
                let info = log.append(&batch, e, NOW).unwrap();
                assert_eq!(info.base_offset, model.end(), "step {step}");
                model.batches.push(Stored {
                    base: info.base_offset,
                    last: info.last_offset,
                    epoch: e,
                    bytes: stored(&batch, info.base_offset, e),
                });
            }
            30..=59 => {
                // The leader's batches, sometimes after a gap (a compacted leader).
                let mut bytes = Vec::new();
                let mut next = model.end();
                let mut added = Vec::new();
                for i in 0..1 + next_rand(&mut rng) % 3 {
                    if next_rand(&mut rng) % 4 == 0 {
                        next += 1 + (next_rand(&mut rng) % 5) as i64;
                    }
                    let e = epoch + i32::from(i == 2);
                    let batch = simple_batch(&format!("{tag}-{i}"), records, NOW);
                    let b = stored(&batch, next, e);
                    bytes.extend_from_slice(&b);
                    added.push(Stored {
                        base: next,
                        last: next + records as i64 - 1,
                        epoch: e,
                        bytes: b,
                    });
                    next += records as i64;
                }
                log.append_replicated(&bytes).unwrap();
                model.batches.extend(added);
            }
            60..=64 => {
                // An overlapping copy is refused and changes nothing.
                if let Some(last) = model.batches.last() {
                    let batch = stored(&simple_batch(&tag, 1, NOW), last.last, epoch);
                    let err = log.append_replicated(&batch).unwrap_err();
                    assert!(matches!(err, LogError::OffsetMismatch { .. }), "{err}");
                }
            }
            65..=81 => {
                let span = (model.end() - model.start + 4) as u64;
                let offset = (model.start - 2 + (next_rand(&mut rng) % span) as i64).max(0);
                log.truncate_to(offset).unwrap();
                model.truncate_to(offset);
            }
            82..=84 => {
                let offset = (next_rand(&mut rng) % (model.end() as u64 + 20)) as i64;
                log.truncate_fully_and_start_at(offset).unwrap();
                model.start = offset;
                model.batches.clear();
            }
            85..=91 => {
                log.close().unwrap();
                drop(log);
                log = Log::open(dir.path(), config.clone()).unwrap();
            }
            _ => {
                // A crash: no close, so no clean-shutdown marker; recovery validates the tail.
                drop(log);
                log = Log::open(dir.path(), config.clone()).unwrap();
            }
        }
        if let Some((slices, expected)) = held {
            let mut sent = Vec::new();
            for slice in &slices {
                slice.read_into(&mut sent).unwrap();
            }
            assert_eq!(sent, expected, "step {step}: bytes of an in-flight read");
        }
        check(&log, &model, &mut rng, step);
    }
}

#[test]
fn replication_primitives_match_a_flat_model() {
    for seed in [0x9E37_79B9_7F4A_7C15, 7, 1234, 0xDEAD_BEEF] {
        run(seed, 250);
    }
}
