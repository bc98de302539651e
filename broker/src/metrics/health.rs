//! What `/readyz` and `/healthz` answer: readiness (starting, ready, shutting down) and
//! liveness (every critical task of the process still runs). Components register checks; this
//! module only asks them, it never decides what is critical.

use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

/// A liveness check: `Err(reason)` when the component it watches has died.
pub type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Readiness and liveness of one process.
pub struct Health {
    state: AtomicU8,
    checks: Mutex<Vec<(&'static str, Check)>>,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    /// Starting: not ready, alive.
    pub fn new() -> Health {
        Health {
            state: AtomicU8::new(STARTING),
            checks: Mutex::new(Vec::new()),
        }
    }

    /// Serving (unless shutting down already).
    pub fn set_ready(&self) {
        let _ = self
            .state
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Shutting down: never ready again.
    pub fn set_stopping(&self) {
        self.state.store(STOPPING, Ordering::Release);
    }

    /// `Ok` when ready, else why not ("starting", "shutting down").
    pub fn readiness(&self) -> Result<(), &'static str> {
        match self.state.load(Ordering::Acquire) {
            READY => Ok(()),
            STARTING => Err("starting"),
            _ => Err("shutting down"),
        }
    }

    /// Adds a liveness check named `name`.
    pub fn watch(&self, name: &'static str, check: Check) {
        self.checks.lock().push((name, check));
    }

    /// `Ok` when every check passes, else one line per failed check.
    pub fn liveness(&self) -> Result<(), String> {
        let failed: Vec<String> = self
            .checks
            .lock()
            .iter()
            .filter_map(|(name, check)| check().err().map(|why| format!("{name}: {why}")))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn readiness_goes_from_starting_to_ready_to_stopping_and_never_back() {
        let h = Health::new();
        assert_eq!(h.readiness(), Err("starting"));
        h.set_ready();
        assert_eq!(h.readiness(), Ok(()));
        h.set_stopping();
        assert_eq!(h.readiness(), Err("shutting down"));
        h.set_ready();
        assert_eq!(
            h.readiness(),
            Err("shutting down"),
            "a late ready does not undo stopping"
        );
        let early = Health::new();
        early.set_stopping();
        early.set_ready();
        assert_eq!(early.readiness(), Err("shutting down"));
    }

    #[test]
    fn liveness_names_every_failed_check() {
        let h = Health::new();
        assert_eq!(h.liveness(), Ok(()));
        let raft_dead = Arc::new(AtomicBool::new(false));
        let flag = raft_dead.clone();
        h.watch(
            "quorum",
            Box::new(move || {
                if flag.load(Ordering::Acquire) {
                    Err("raft core stopped".into())
                } else {
                    Ok(())
                }
            }),
        );
        h.watch("replication", Box::new(|| Ok(())));
        assert_eq!(h.liveness(), Ok(()));
        raft_dead.store(true, Ordering::Release);
        assert_eq!(h.liveness(), Err("quorum: raft core stopped".to_string()));
    }
}
