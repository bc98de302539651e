//! Small checkpoint files in Kafka's text format: a version line (`0`), a count line, then one
//! `key offset` line per entry (the offset after the last space, so a key such as
//! `topic partition` may itself hold spaces). Used for high watermarks (by the replication
//! layer) and, through [`write_entries`] / [`read_entries`], for the leader epoch cache.
//!
//! Owns the format and the atomic write (temp file, fsync, rename, fsync of the directory).
//! It never decides what the offsets mean, never leaves a half-written file under the real
//! name, and never panics on a damaged file: it reports the file and the line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The only format version written and read.
pub const CHECKPOINT_VERSION: i32 = 0;

/// Errors reading or writing a checkpoint file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A filesystem operation failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file does not parse; `line` counts from 1 (0 when the file as a whole is at fault).
    #[error("damaged checkpoint {} line {line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A key cannot be written without making the file ambiguous.
    #[error("checkpoint {}: key {key:?} is empty or holds a line break or edge whitespace", path.display())]
    BadKey { path: PathBuf, key: String },
}

impl CheckpointError {
    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| CheckpointError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `offsets` to `path` atomically (Kafka's checkpoint format, keys in map order).
pub fn write_offsets(path: &Path, offsets: &BTreeMap<String, i64>) -> Result<(), CheckpointError> {
    write_entries(path, offsets.iter().map(|(k, v)| (k.as_str(), *v)))
}

/// Reads a file written by [`write_offsets`]. A missing file is an error (`Io` with
/// `NotFound`), so callers decide whether absence means "empty".
pub fn read_offsets(path: &Path) -> Result<BTreeMap<String, i64>, CheckpointError> {
    let mut out = BTreeMap::new();
    for (line, key, offset) in read_entries(path)? {
        if out.insert(key.clone(), offset).is_some() {
            return Err(CheckpointError::Malformed {
                path: path.to_path_buf(),
                line,
                reason: format!("duplicate key {key:?}"),
            });
        }
    }
    Ok(out)
}

/// Writes `entries` in order, atomically.
pub(crate) fn write_entries<'a>(
    path: &Path,
    entries: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<(), CheckpointError> {
    let entries: Vec<(&str, i64)> = entries.into_iter().collect();
    let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
    for (key, offset) in entries {
        let bad = key.is_empty() || key.contains(['\n', '\r']) || key.trim() != key;
        if bad {
            return Err(CheckpointError::BadKey {
                path: path.to_path_buf(),
                key: key.to_string(),
            });
        }
        text.push_str(&format!("{key} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// Reads every `(line number, key, offset)` entry, checking version and count.
pub(crate) fn read_entries(path: &Path) -> Result<Vec<(usize, String, i64)>, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(CheckpointError::io("read", path))?;
    parse(&text).map_err(|(line, reason)| CheckpointError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    })
}

/// `(line number, reason)` of the first problem in a checkpoint's text.
type ParseProblem = (usize, String);

/// Parses checkpoint text into `(line number, key, offset)` entries.
fn parse(text: &str) -> Result<Vec<(usize, String, i64)>, ParseProblem> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (n, version) = lines
        .next()
        .ok_or((1, "missing version line".to_string()))?;
    match version.trim().parse::<i32>() {
        Ok(CHECKPOINT_VERSION) => {}
        Ok(v) => return Err((n, format!("unsupported version {v}"))),
        Err(_) => return Err((n, format!("version {version:?} is not a number"))),
    }
    let (n, count) = lines.next().ok_or((2, "missing count line".to_string()))?;
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| (n, format!("count {count:?} is not a number")))?;
    let mut entries = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let (key, offset) = line
            .rsplit_once(' ')
            .ok_or((n, format!("expected `key offset`, found {line:?}")))?;
        let offset = offset
            .parse::<i64>()
            .map_err(|_| (n, format!("offset {offset:?} is not a number")))?;
        if key.is_empty() {
            return Err((n, "empty key".to_string()));
        }
        entries.push((n, key.to_string(), offset));
    }
    if entries.len() != count {
        let last = text.lines().count();
        return Err((
            last,
            format!(
                "count line says {count} entries, file holds {}",
                entries.len()
            ),
        ));
    }
    Ok(entries)
}

/// Writes `bytes` to `path` through `{path}.tmp`: write, fsync, rename, fsync the directory.
/// A crash leaves either the old file or the new one (and perhaps a stray temp file).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(CheckpointError::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(CheckpointError::io("rename", &tmp))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(CheckpointError::io("fsync directory", dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, i64> {
        BTreeMap::from([
            ("orders 0".to_string(), 42),
            ("orders 1".to_string(), 0),
            ("payments 3".to_string(), 9_000_000_000),
        ])
    }

    #[test]
    fn offsets_round_trip_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replication-offset-checkpoint");
        write_offsets(&path, &sample()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n3\norders 0 42\norders 1 0\npayments 3 9000000000\n"
        );
        assert_eq!(read_offsets(&path).unwrap(), sample());
        assert!(!dir
            .path()
            .join("replication-offset-checkpoint.tmp")
            .exists());
        // Rewriting replaces the whole content.
        write_offsets(&path, &BTreeMap::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n0\n");
        assert!(read_offsets(&path).unwrap().is_empty());
    }

    fn damaged(text: &str) -> (usize, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        std::fs::write(&path, text).unwrap();
        match read_offsets(&path).unwrap_err() {
            CheckpointError::Malformed {
                path: p,
                line,
                reason,
            } => {
                assert_eq!(p, path);
                let shown = CheckpointError::Malformed {
                    path: p,
                    line,
                    reason: reason.clone(),
                }
                .to_string();
                assert!(shown.contains("/cp line"), "{shown}");
                (line, reason)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn damaged_files_name_the_line() {
        assert_eq!(damaged("").0, 1);
        assert!(damaged("1\n0\n").1.contains("unsupported version 1"));
        assert_eq!(damaged("0\nx\n").0, 2);
        assert_eq!(
            damaged("0\n2\na 1\nb x\n"),
            (4, "offset \"x\" is not a number".into())
        );
        assert_eq!(damaged("0\n1\nnospace\n").0, 3);
        assert!(damaged("0\n3\na 1\nb 2\n").1.contains("says 3"));
        assert!(damaged("0\n1\na 1\nb 2\n").1.contains("says 1"));
        assert!(damaged("0\n2\na 1\na 2\n").1.contains("duplicate"));
        assert_eq!(damaged("0\n1\n 5\n").0, 3, "empty key");
    }

    #[test]
    fn missing_file_is_not_found_and_bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        match read_offsets(&path).unwrap_err() {
            CheckpointError::Io { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("unexpected {other:?}"),
        }
        for key in ["", "a\nb", " lead"] {
            let map = BTreeMap::from([(key.to_string(), 1)]);
            assert!(matches!(
                write_offsets(&path, &map),
                Err(CheckpointError::BadKey { .. })
            ));
        }
        assert!(!path.exists(), "a refused write leaves nothing behind");
    }
}
