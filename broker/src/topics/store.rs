//! Persistence of topic metadata (names, ids, partition counts, config overrides) and the
//! cluster id, in one JSON file replaced atomically (write temp, fsync, rename, fsync dir).
//!
//! This module must never write the file in place: a crash leaves either the old or the new file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// File name of the metadata file inside the data dir.
pub const META_FILE: &str = "samsa-meta.json";

/// What is persisted about one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic-level config overrides.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// The whole metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaFile {
    /// Format version of this file.
    pub version: u32,
    /// Cluster id reported in Metadata responses.
    pub cluster_id: String,
    /// Node id the data dir belongs to.
    pub node_id: i32,
    /// Every topic.
    pub topics: Vec<TopicRecord>,
    /// Cluster-wide dynamic broker defaults (Kafka names), set with IncrementalAlterConfigs on
    /// the BROKER resource "".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_defaults: BTreeMap<String, String>,
    /// This broker's own dynamic configs (Kafka names), set with IncrementalAlterConfigs on the
    /// BROKER resource named by its id; they come before the cluster-wide defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, String>,
}

/// Reads the metadata file, or `None` when the data dir is new.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<MetaFile>> {
    let path = data_dir.join(META_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let meta: MetaFile = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok(Some(meta))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// Replaces the metadata file atomically.
pub fn save(data_dir: &Path, meta: &MetaFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    write_atomically(&data_dir.join(META_FILE), &bytes)
}

/// Writes `bytes` to `path` by way of a temp file, fsyncing file and directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A new cluster id: 16 random bytes in URL-safe base64 without padding, like Kafka's.
pub fn new_cluster_id() -> String {
    encode_cluster_id(Uuid::new_v4().into_bytes())
}

/// The cluster id every member of a cluster reports: derived from the controller quorum's
/// voters, which all members are configured with.
pub fn cluster_id_for(voters: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let salted = format!("samsa-cluster-{i}:{voters}");
        chunk.copy_from_slice(&crc32c::crc32c(salted.as_bytes()).to_be_bytes());
    }
    encode_cluster_id(bytes)
}

fn encode_cluster_id(bytes: [u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let mut meta = MetaFile {
            version: 1,
            cluster_id: new_cluster_id(),
            node_id: 1,
            topics: vec![],
            broker_defaults: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
        };
        assert_eq!(meta.cluster_id.len(), 22);
        meta.topics.push(TopicRecord {
            name: "a".into(),
            id: Uuid::new_v4(),
            partitions: 3,
            configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
        });
        meta.broker_defaults
            .insert("log.retention.ms".into(), "5000".into());
        meta.broker_configs
            .insert("follower.replication.throttled.rate".into(), "1000".into());
        save(dir.path(), &meta).unwrap();
        assert_eq!(load(dir.path()).unwrap().unwrap(), meta);
        assert!(!dir.path().join("samsa-meta.tmp").exists());
        fs::write(dir.path().join(META_FILE), b"{broken").unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains(META_FILE));
    }
}
