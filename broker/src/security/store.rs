//! Where SCRAM credentials and ACLs live: in a cluster, in the replicated metadata image (the
//! controllers apply the commands); on a single node, in `samsa-security.json` in the data dir,
//! replaced atomically on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::acl::{AclBinding, AclSet};
use super::scram::{ScramCredential, ScramMechanism};

/// File name of the single-node security state inside the data dir.
pub const SECURITY_FILE: &str = "samsa-security.json";

/// Every user's SCRAM credentials and every ACL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityState {
    /// Credentials by user name, then mechanism.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// ACL bindings.
    #[serde(default, skip_serializing_if = "AclSet::is_empty")]
    pub acls: AclSet,
}

impl SecurityState {
    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.scram.is_empty() && self.acls.is_empty()
    }

    /// `user`'s credential for `mechanism`.
    pub fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.scram.get(user).and_then(|m| m.get(&mechanism))
    }

    /// Applies one change of SCRAM credentials: deletions, then upsertions.
    pub fn alter_scram(&mut self, change: &ScramChange) {
        for (user, mechanism) in &change.deletions {
            if let Some(m) = self.scram.get_mut(user) {
                m.remove(mechanism);
                if m.is_empty() {
                    self.scram.remove(user);
                }
            }
        }
        for u in &change.upsertions {
            self.scram
                .entry(u.user.clone())
                .or_default()
                .insert(u.mechanism, u.credential.clone());
        }
    }

    /// Adds bindings (already present ones are no-ops).
    pub fn create_acls(&mut self, bindings: &[AclBinding]) {
        self.acls.extend(bindings.iter().cloned());
    }

    /// Removes exactly these bindings.
    pub fn delete_acls(&mut self, bindings: &[AclBinding]) {
        for b in bindings {
            self.acls.remove(b);
        }
    }
}

/// One credential set for a user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpsertion {
    /// User name.
    pub user: String,
    /// Mechanism.
    pub mechanism: ScramMechanism,
    /// The stored form.
    pub credential: ScramCredential,
}

/// An AlterUserScramCredentials as applied: credentials removed, then set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramChange {
    /// (user, mechanism) pairs to remove.
    pub deletions: Vec<(String, ScramMechanism)>,
    /// Credentials to set.
    pub upsertions: Vec<ScramUpsertion>,
}

/// The single-node store: the state in memory and in its file.
pub struct LocalStore {
    path: PathBuf,
    state: RwLock<Arc<SecurityState>>,
    change: Mutex<()>,
}

impl LocalStore {
    /// Reads `data_dir/samsa-security.json`, or starts empty.
    pub fn open(data_dir: &Path) -> anyhow::Result<LocalStore> {
        let path = data_dir.join(SECURITY_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SecurityState::default(),
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        Ok(LocalStore {
            path,
            state: RwLock::new(Arc::new(state)),
            change: Mutex::new(()),
        })
    }

    /// The current state.
    pub fn state(&self) -> Arc<SecurityState> {
        self.state.read().clone()
    }

    /// Changes the state and persists it; on a write failure nothing changes.
    pub fn update(&self, change: impl FnOnce(&mut SecurityState)) -> std::io::Result<()> {
        let _guard = self.change.lock();
        let mut next = (**self.state.read()).clone();
        change(&mut next);
        let bytes = serde_json::to_vec_pretty(&next).map_err(std::io::Error::other)?;
        crate::topics::store::write_atomically(&self.path, &bytes)?;
        *self.state.write() = Arc::new(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{AclOperation, AclPermission, PatternType, ResourceType};

    #[test]
    fn survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        assert!(store.state().is_empty());
        let cred = ScramCredential {
            salt: vec![1, 2],
            stored_key: vec![3],
            server_key: vec![4],
            iterations: 4096,
        };
        let binding = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        store
            .update(|s| {
                s.alter_scram(&ScramChange {
                    deletions: vec![],
                    upsertions: vec![ScramUpsertion {
                        user: "alice".into(),
                        mechanism: ScramMechanism::Sha512,
                        credential: cred.clone(),
                    }],
                });
                s.create_acls(std::slice::from_ref(&binding));
            })
            .unwrap();
        let again = LocalStore::open(dir.path()).unwrap().state();
        assert_eq!(
            again.credential("alice", ScramMechanism::Sha512),
            Some(&cred)
        );
        assert_eq!(again.acls.len(), 1);
        store
            .update(|s| {
                s.alter_scram(&ScramChange {
                    deletions: vec![("alice".into(), ScramMechanism::Sha512)],
                    upsertions: vec![],
                });
                s.delete_acls(&[binding]);
            })
            .unwrap();
        assert!(LocalStore::open(dir.path()).unwrap().state().is_empty());
    }
}
